-- 0005_quota_nics: a limit on the number of a project's volumes, beside
-- the limit on their total size (0002's volume_gib). NULL = unlimited, as
-- for every other limit; existing projects stay unlimited.
ALTER TABLE quotas ADD COLUMN volumes bigint CHECK (volumes >= 0);

-- What a VM's NICs look like on their host, as last observed (by the
-- operations that change a VM's power state and by the reconciler): the
-- host-side device while the domain runs, and the addresses the network's
-- DHCP leases give the MAC. Observations, so they do not bump versions.
ALTER TABLE vm_nics
  ADD COLUMN target_device text NOT NULL DEFAULT '',
  ADD COLUMN ip_addresses inet[] NOT NULL DEFAULT '{}';

-- A VM with cloud-init user data gets a NoCloud config drive: an ISO made
-- by the server and written into a pool of the VM's host (--default-pool
-- there), as "{project}.{vm}.cidata". The pool cannot go while it holds
-- one; seed_path is where the domain finds it.
ALTER TABLE vms
  ADD COLUMN seed_pool uuid REFERENCES pools (id),
  ADD COLUMN seed_path text NOT NULL DEFAULT '';
CREATE INDEX vms_seed_pool ON vms (seed_pool) WHERE seed_pool IS NOT NULL;

-- A VM being moved holds room on its destination for as long as the
-- operation that moves it (migrating_op) runs: placement counts it there
-- too, so concurrent migrations and drains cannot overcommit a host.
ALTER TABLE vms
  ADD COLUMN migrating_to uuid REFERENCES hosts (id) ON DELETE SET NULL,
  ADD COLUMN migrating_op uuid;

-- The servers sharing this database, by --replica-id: a replica id names
-- the claims on operations that a restarted server resumes, so two live
-- servers must never share one. A server records itself at start (refusing
-- an id a live server holds), refreshes seen_at with its operation leases
-- and removes its row when it stops.
CREATE TABLE replicas (
  id text PRIMARY KEY,
  instance uuid NOT NULL,
  hostname text NOT NULL DEFAULT '',
  boot_id text NOT NULL DEFAULT '',
  pid integer NOT NULL DEFAULT 0,
  pidns text NOT NULL DEFAULT '',        -- /proc/self/ns/pid: pids compare only within one
  start_ticks bigint NOT NULL DEFAULT 0, -- the process's start time: a reused pid is not it
  lease_s integer NOT NULL DEFAULT 30,   -- its --operation-lease-s (seen_at is renewed at a third)
  started_at timestamptz NOT NULL DEFAULT now(),
  seen_at timestamptz NOT NULL DEFAULT now()
);
