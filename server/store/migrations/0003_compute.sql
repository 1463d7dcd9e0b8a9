-- 0003_compute: hypervisor hosts, VMs and their snapshots, the operations
-- journal and the event log.
--
-- PostgreSQL holds desired state; libvirt holds actual state (DESIGN.md 5).
-- An operation is journaled here before any hypervisor work starts, so a
-- crash between "libvirt did it" and "PostgreSQL recorded it" is repaired
-- at the next start. Enums are stored as the proto numbers.

CREATE TABLE hosts (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  host_id text NOT NULL UNIQUE CHECK (host_id ~ '^[a-z][a-z0-9-]{0,62}$'),
  uri text NOT NULL UNIQUE CHECK (length(uri) BETWEEN 1 AND 1024),
  description text NOT NULL DEFAULT '' CHECK (length(description) <= 1024),
  labels jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(labels) = 'object'),
  cordoned boolean NOT NULL DEFAULT false,
  state smallint NOT NULL DEFAULT 1, -- Host.State
  state_message text NOT NULL DEFAULT '',
  hypervisor_type text NOT NULL DEFAULT '',
  hypervisor_version text NOT NULL DEFAULT '',
  libvirt_version text NOT NULL DEFAULT '',
  hostname text NOT NULL DEFAULT '',
  arch text NOT NULL DEFAULT '',
  cpu_count integer NOT NULL DEFAULT 0,
  memory_mib bigint NOT NULL DEFAULT 0,
  free_memory_mib bigint NOT NULL DEFAULT 0,
  last_heartbeat_at timestamptz,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE vms (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project uuid NOT NULL REFERENCES projects (id) ON DELETE RESTRICT,
  vm_id text NOT NULL CHECK (vm_id ~ '^[a-z][a-z0-9-]{0,62}$'),
  description text NOT NULL DEFAULT '' CHECK (length(description) <= 1024),
  labels jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(labels) = 'object'),
  state smallint NOT NULL DEFAULT 1, -- Vm.State
  state_message text NOT NULL DEFAULT '',
  vcpus integer NOT NULL CHECK (vcpus BETWEEN 1 AND 256),
  memory_mib bigint NOT NULL CHECK (memory_mib BETWEEN 64 AND 4194304),
  max_vcpus integer NOT NULL CHECK (max_vcpus >= vcpus AND max_vcpus <= 256),
  max_memory_mib bigint NOT NULL CHECK (max_memory_mib >= memory_mib AND max_memory_mib <= 4194304),
  -- devices and placement as their proto messages (protobuf binary)
  disks bytea NOT NULL DEFAULT ''::bytea,
  nics bytea NOT NULL DEFAULT ''::bytea,
  placement bytea NOT NULL DEFAULT ''::bytea,
  user_data text NOT NULL DEFAULT '' CHECK (octet_length(user_data) <= 65536),
  machine_type text NOT NULL DEFAULT '',
  firmware smallint NOT NULL DEFAULT 0,
  host uuid REFERENCES hosts (id) ON DELETE RESTRICT,
  -- the snapshot the VM's disks and configuration currently derive from
  -- (the parent of the next snapshot)
  current_snapshot uuid,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (project, vm_id)
);
CREATE INDEX vms_host ON vms (host);
CREATE INDEX vms_project_created ON vms (project, created_at);

CREATE TABLE vm_snapshots (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  vm uuid NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
  snapshot_id text NOT NULL CHECK (snapshot_id ~ '^[a-z][a-z0-9-]{0,62}$'),
  description text NOT NULL DEFAULT '' CHECK (length(description) <= 1024),
  labels jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(labels) = 'object'),
  state smallint NOT NULL DEFAULT 1, -- VmSnapshot.State
  state_message text NOT NULL DEFAULT '',
  include_memory boolean NOT NULL DEFAULT false,
  vm_state smallint NOT NULL DEFAULT 0,
  parent uuid REFERENCES vm_snapshots (id) ON DELETE SET NULL,
  -- the VM's configuration when taken (a Vm message), restored by a revert
  config bytea NOT NULL DEFAULT ''::bytea,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (vm, snapshot_id)
);

-- The operations journal. A worker claims a PENDING row with
-- FOR UPDATE SKIP LOCKED, marks it RUNNING with its replica id and a lease
-- it renews; a RUNNING row whose lease ran out belongs to a dead replica
-- and is recovered by the next worker that sees it.
CREATE TABLE operations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  seq bigserial NOT NULL UNIQUE, -- journal order (created_at is the transaction's start)
  project uuid REFERENCES projects (id) ON DELETE CASCADE, -- NULL: system-level
  verb text NOT NULL,
  target text NOT NULL,
  target_uid uuid, -- the VM or host row the work acts on
  state smallint NOT NULL DEFAULT 1, -- Operation.State
  progress integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
  status_message text NOT NULL DEFAULT '',
  cancel_requested boolean NOT NULL DEFAULT false,
  principal text NOT NULL DEFAULT '',
  request_id text NOT NULL DEFAULT '',
  request bytea NOT NULL, -- the encoded API request the work carries out
  -- the step reached, so that a recovered operation resumes or undoes
  step text NOT NULL DEFAULT '',
  response_type text NOT NULL DEFAULT '',
  response bytea,
  error_code integer,
  error_message text,
  claimed_by text,
  lease_until timestamptz,
  attempts integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  ended_at timestamptz
);
CREATE INDEX operations_pending ON operations (seq) WHERE state IN (1, 2);
CREATE INDEX operations_project ON operations (project, created_at);
CREATE INDEX operations_target ON operations (target_uid) WHERE state IN (1, 2);

-- The event log: WatchEvents replays it after a sequence and follows it
-- through NOTIFY nc_events. Sequences are assigned under a transaction-level
-- advisory lock, so they are in commit order.
CREATE TABLE events (
  seq bigint PRIMARY KEY,
  type smallint NOT NULL,
  resource text NOT NULL DEFAULT '',
  resource_type text NOT NULL DEFAULT '',
  project text NOT NULL DEFAULT '', -- "projects/p" or "" for system events
  target text NOT NULL DEFAULT '',  -- an operation's target, for resource filters
  time timestamptz NOT NULL DEFAULT now(),
  event bytea NOT NULL -- the encoded novacron.v1.Event (sequence included)
);
CREATE INDEX events_time ON events (time);
CREATE SEQUENCE events_seq;
