-- 0001_init: the first schema version. It records which installation this
-- database belongs to; the identity, VM and operations tables come in later
-- migrations. Runs in one transaction, recorded in schema_migrations.
CREATE TABLE schema_info (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  installation_id uuid NOT NULL DEFAULT gen_random_uuid(),
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO schema_info DEFAULT VALUES;
