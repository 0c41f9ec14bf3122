-- Portable schema: runs unchanged on SQLite and PostgreSQL. Times are
-- unix microseconds (BIGINT), the precision both backends keep exactly,
-- so audit hashes computed before a write verify after a read.
CREATE TABLE tenants (
    id           TEXT PRIMARY KEY,
    display_name TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE operators (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    name       TEXT NOT NULL,
    email      TEXT NOT NULL DEFAULT '',
    roles      TEXT NOT NULL,
    is_system  INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    operator_id  TEXT NOT NULL REFERENCES operators (id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX tokens_operator ON tokens (tenant_id, operator_id);

CREATE TABLE apis (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    name         TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    description  TEXT NOT NULL DEFAULT '',
    owner        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE versions (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    api_id       TEXT NOT NULL REFERENCES apis (id),
    label        TEXT NOT NULL,
    state        TEXT NOT NULL,
    bindings     TEXT NOT NULL,
    upstream     TEXT NOT NULL,
    spec_format  TEXT NOT NULL DEFAULT '',
    spec_version TEXT NOT NULL DEFAULT '',
    spec_content TEXT,
    author       TEXT NOT NULL,
    sunset       BIGINT,
    successor    TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (api_id, label)
);
CREATE INDEX versions_state ON versions (state);

CREATE TABLE transitions (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    version_id TEXT NOT NULL REFERENCES versions (id),
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    actor      TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    at         BIGINT NOT NULL
);
CREATE INDEX transitions_version ON transitions (tenant_id, version_id);

-- The audit log has no foreign keys: it outlives the objects it describes.
CREATE TABLE audit (
    tenant_id     TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    object_type   TEXT NOT NULL,
    object_id     TEXT NOT NULL,
    before_digest TEXT NOT NULL DEFAULT '',
    after_digest  TEXT NOT NULL DEFAULT '',
    request_id    TEXT NOT NULL DEFAULT '',
    detail        TEXT NOT NULL DEFAULT '',
    at            BIGINT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_at ON audit (tenant_id, at);

-- One row per chain: the last sequence number and hash. Appenders lock it,
-- and verification compares it with the end of the chain.
CREATE TABLE audit_head (
    tenant_id TEXT PRIMARY KEY,
    seq       BIGINT NOT NULL,
    hash      TEXT NOT NULL
);
