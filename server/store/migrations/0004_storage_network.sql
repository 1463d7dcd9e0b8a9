-- 0004_storage_network: storage pools (per host), volumes and virtual
-- networks (per project), DHCP reservations, and which VM uses which
-- volume and network.
--
-- As in 0003, PostgreSQL holds the desired state and libvirt the actual
-- one; enums are stored as the proto numbers. The libvirt objects are
-- named after the rows: a pool by its pool id and uid, a volume
-- "{project}.{volume}" in its pool, a network "{project}.{network}" with
-- the row's uid as its UUID.

CREATE TABLE pools (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  host uuid NOT NULL REFERENCES hosts (id) ON DELETE RESTRICT,
  pool_id text NOT NULL CHECK (pool_id ~ '^[a-z][a-z0-9-]{0,62}$'),
  type smallint NOT NULL CHECK (type BETWEEN 1 AND 3), -- Pool.Type
  target_path text NOT NULL DEFAULT '' CHECK (length(target_path) <= 511),
  source_devices text[] NOT NULL DEFAULT '{}',
  source_host text NOT NULL DEFAULT '' CHECK (length(source_host) <= 255),
  source_export text NOT NULL DEFAULT '' CHECK (length(source_export) <= 511),
  autostart boolean NOT NULL DEFAULT false,
  state smallint NOT NULL DEFAULT 1, -- Pool.State
  state_message text NOT NULL DEFAULT '',
  capacity_bytes bigint NOT NULL DEFAULT 0,
  allocation_bytes bigint NOT NULL DEFAULT 0,
  available_bytes bigint NOT NULL DEFAULT 0,
  description text NOT NULL DEFAULT '' CHECK (length(description) <= 1024),
  labels jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(labels) = 'object'),
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (host, pool_id)
);

CREATE TABLE volumes (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project uuid NOT NULL REFERENCES projects (id) ON DELETE RESTRICT,
  volume_id text NOT NULL CHECK (volume_id ~ '^[a-z][a-z0-9-]{0,62}$'),
  pool uuid NOT NULL REFERENCES pools (id) ON DELETE RESTRICT,
  format smallint NOT NULL CHECK (format BETWEEN 1 AND 2), -- Volume.Format
  size_bytes bigint NOT NULL CHECK (size_bytes >= 0 AND size_bytes % 1048576 = 0),
  allocation_bytes bigint NOT NULL DEFAULT 0,
  -- the volume's path on its host, known once libvirt created it
  path text NOT NULL DEFAULT '',
  source_volume text NOT NULL DEFAULT '',
  source_image text NOT NULL DEFAULT '',
  -- the VM using the volume and its guest device; a VM row is deleted only
  -- after its volumes are released, the FK is the last line of defence
  attached_vm uuid REFERENCES vms (id) ON DELETE SET NULL,
  target_device text NOT NULL DEFAULT '',
  -- the operation that reserved the volume for attached_vm and has not
  -- finished yet (CreateVm, AttachVolume); NULL once attached or released
  reserved_by uuid,
  state smallint NOT NULL DEFAULT 1, -- Volume.State
  state_message text NOT NULL DEFAULT '',
  description text NOT NULL DEFAULT '' CHECK (length(description) <= 1024),
  labels jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(labels) = 'object'),
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (project, volume_id)
);
CREATE INDEX volumes_pool ON volumes (pool);
CREATE INDEX volumes_attached_vm ON volumes (attached_vm) WHERE attached_vm IS NOT NULL;

-- Bridge names must fit Linux's 15 characters: "ncbr" || bridge_no.
CREATE SEQUENCE network_bridge_seq;

CREATE TABLE networks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project uuid NOT NULL REFERENCES projects (id) ON DELETE RESTRICT,
  network_id text NOT NULL CHECK (network_id ~ '^[a-z][a-z0-9-]{0,62}$'),
  host uuid NOT NULL REFERENCES hosts (id) ON DELETE RESTRICT,
  mode smallint NOT NULL CHECK (mode BETWEEN 1 AND 4), -- Network.Mode
  bridge text NOT NULL CHECK (length(bridge) BETWEEN 1 AND 15),
  ipv4_cidr cidr,
  gateway inet,
  ipv6_cidr cidr,
  dhcp_start inet,
  dhcp_end inet,
  vlan_id integer CHECK (vlan_id BETWEEN 1 AND 4094),
  mtu integer NOT NULL DEFAULT 0 CHECK (mtu = 0 OR mtu BETWEEN 576 AND 9000),
  autostart boolean NOT NULL DEFAULT false,
  state smallint NOT NULL DEFAULT 1, -- Network.State
  state_message text NOT NULL DEFAULT '',
  description text NOT NULL DEFAULT '' CHECK (length(description) <= 1024),
  labels jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(labels) = 'object'),
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (project, network_id),
  CHECK ((mode = 4) = (ipv4_cidr IS NULL))
);
CREATE INDEX networks_host ON networks (host);

CREATE TABLE network_reservations (
  network uuid NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
  mac macaddr NOT NULL,
  ip inet NOT NULL,
  hostname text NOT NULL DEFAULT '' CHECK (hostname ~ '^([a-z0-9][a-z0-9-]{0,62})?$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (network, mac),
  UNIQUE (network, ip)
);
CREATE UNIQUE INDEX network_reservations_hostname ON network_reservations (network, hostname)
  WHERE hostname <> '';

-- The NICs of VMs (the VM's nics column keeps their full description):
-- what "network in use" means, kept by VmService in the transaction that
-- changes the VM's nics.
CREATE TABLE vm_nics (
  vm uuid NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
  mac macaddr NOT NULL,
  network uuid NOT NULL REFERENCES networks (id) ON DELETE RESTRICT,
  reserved_by uuid, -- as volumes.reserved_by: the attach still in progress
  PRIMARY KEY (vm, mac)
);
CREATE INDEX vm_nics_network ON vm_nics (network);
