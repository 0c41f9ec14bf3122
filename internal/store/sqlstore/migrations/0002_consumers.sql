-- Consumers of the data plane (applications, their API keys), ownership
-- relations for identity bindings, and the per-version data-plane policy.
CREATE TABLE applications (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    name              TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    attributes        TEXT NOT NULL DEFAULT '{}',
    cert_fingerprints TEXT NOT NULL DEFAULT '[]',
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    app_id     TEXT NOT NULL REFERENCES applications (id),
    name       TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    expires_at BIGINT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX api_keys_app ON api_keys (tenant_id, app_id);

CREATE TABLE ownerships (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    subject     TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, subject, object_type, object_id)
);

ALTER TABLE versions ADD COLUMN policy TEXT NOT NULL DEFAULT '{}';
