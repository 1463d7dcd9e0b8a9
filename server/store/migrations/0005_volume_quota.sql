-- 0005_volume_quota: a limit on the number of a project's volumes, beside
-- the limit on their total size (0002's volume_gib). NULL = unlimited, as
-- for every other limit; existing projects stay unlimited.
ALTER TABLE quotas ADD COLUMN volumes bigint CHECK (volumes >= 0);
