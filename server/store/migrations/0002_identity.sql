-- 0002_identity: users, projects, quotas, role bindings, API keys, login
-- sessions with rotating refresh tokens, the audit log and the request_id
-- idempotency records. Every mutable row carries `version`, the source of its
-- etag. Names are checked here as well as in the server, so no path can
-- store a name the API could not produce.

CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  username text NOT NULL UNIQUE CHECK (username ~ '^[a-z][a-z0-9-]{0,62}$'),
  display_name text NOT NULL DEFAULT '' CHECK (length(display_name) <= 128),
  email text NOT NULL DEFAULT '' CHECK (length(email) <= 254),
  disabled boolean NOT NULL DEFAULT false,
  system_admin boolean NOT NULL DEFAULT false,
  password_hash text NOT NULL,
  -- lockout: failures counted from failure_window_start; locked_until set
  -- when the count reaches the configured limit
  failed_logins integer NOT NULL DEFAULT 0,
  failure_window_start timestamptz,
  locked_until timestamptz,
  last_login_at timestamptz,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id text NOT NULL UNIQUE CHECK (project_id ~ '^[a-z][a-z0-9-]{0,62}$'),
  display_name text NOT NULL DEFAULT '' CHECK (length(display_name) <= 128),
  description text NOT NULL DEFAULT '' CHECK (length(description) <= 1024),
  labels jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(labels) = 'object'),
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- NULL limit = unlimited. One row per project, created with it.
CREATE TABLE quotas (
  project uuid PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
  vcpus bigint CHECK (vcpus >= 0),
  memory_mib bigint CHECK (memory_mib >= 0),
  vms bigint CHECK (vms >= 0),
  volume_gib bigint CHECK (volume_gib >= 0),
  networks bigint CHECK (networks >= 0),
  backup_gib bigint CHECK (backup_gib >= 0),
  version bigint NOT NULL DEFAULT 1,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE role_bindings (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  binding_id text NOT NULL CHECK (binding_id ~ '^[a-z][a-z0-9-]{0,62}$'),
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role smallint NOT NULL CHECK (role BETWEEN 1 AND 3),
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (project, binding_id),
  UNIQUE (project, user_id)
);
CREATE INDEX role_bindings_user ON role_bindings (user_id);

-- Secrets are high-entropy random strings: a SHA-256 digest is enough to
-- store them (no password KDF needed) and lets the key be found by digest.
CREATE TABLE api_keys (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  key_id text NOT NULL CHECK (key_id ~ '^[a-z][a-z0-9-]{0,62}$'),
  description text NOT NULL DEFAULT '' CHECK (length(description) <= 1024),
  role smallint NOT NULL CHECK (role BETWEEN 1 AND 3),
  secret_digest bytea NOT NULL UNIQUE,
  secret_prefix text NOT NULL,
  creator text NOT NULL,
  expire_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (project, key_id)
);

CREATE TABLE sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  peer text NOT NULL DEFAULT '',
  user_agent text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  last_refresh_at timestamptz,
  expire_at timestamptz NOT NULL,
  revoked_at timestamptz,
  revoke_reason text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);

-- Every refresh token a session was given, by digest. `used_at` is set when
-- it is exchanged; presenting a used token again (other than a retry with the
-- same request_id) revokes the session. `next_digest` is the token the
-- exchange produced.
CREATE TABLE refresh_tokens (
  digest bytea PRIMARY KEY,
  session uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  issued_at timestamptz NOT NULL DEFAULT now(),
  used_at timestamptz,
  used_request_id text,
  next_digest bytea
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session);

CREATE TABLE audit_events (
  id bigserial PRIMARY KEY,
  time timestamptz NOT NULL DEFAULT now(),
  principal text NOT NULL,
  project text NOT NULL DEFAULT '',
  method text NOT NULL,
  resource text NOT NULL DEFAULT '',
  result_code integer NOT NULL,
  message text NOT NULL DEFAULT '',
  request_id text NOT NULL DEFAULT '',
  peer text NOT NULL DEFAULT '',
  operation text NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_project ON audit_events (project, id);
CREATE INDEX audit_events_time ON audit_events (time);

-- request_id idempotency: the first response of a mutating call, replayed
-- for a retry by the same principal with the same method and request_id.
CREATE TABLE idempotency (
  principal text NOT NULL,
  method text NOT NULL,
  request_id text NOT NULL,
  request_digest bytea NOT NULL,
  response bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (principal, method, request_id)
);
CREATE INDEX idempotency_created ON idempotency (created_at);
