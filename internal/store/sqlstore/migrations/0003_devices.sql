-- Device identity: the registry, device credentials, one CA per tenant and
-- one-time enrollment tokens. Device credentials reference their device by
-- (tenant_id, device_id) without a foreign key on purpose: a revoked
-- certificate must outlive a deleted device so the CRL keeps listing it.
CREATE TABLE devices (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    id         TEXT NOT NULL,
    model      TEXT NOT NULL DEFAULT '',
    serial     TEXT NOT NULL DEFAULT '',
    owners     TEXT NOT NULL DEFAULT '[]',
    attributes TEXT NOT NULL DEFAULT '{}',
    status     TEXT NOT NULL,
    firmware   TEXT NOT NULL DEFAULT '',
    first_seen BIGINT,
    last_seen  BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE device_credentials (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    device_id     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    fingerprint   TEXT NOT NULL DEFAULT '',
    serial        TEXT NOT NULL DEFAULT '',
    not_after     BIGINT,
    revoked_at    BIGINT,
    revoke_reason TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL
);
CREATE INDEX device_credentials_device ON device_credentials (tenant_id, device_id);
CREATE INDEX device_credentials_fingerprint ON device_credentials (fingerprint);

CREATE TABLE tenant_cas (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants (id),
    key_type   TEXT NOT NULL,
    cert_pem   TEXT NOT NULL,
    sealed_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE enrollment_tokens (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    device_id  TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX enrollment_tokens_device ON enrollment_tokens (tenant_id, device_id);
