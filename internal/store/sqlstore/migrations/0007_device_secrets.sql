-- Device secrets: DTLS pre-shared keys and the per-tenant signing keys of
-- device tokens. Both hold key material sealed with the device KEK
-- (AES-256-GCM, base64 TEXT for portability); nothing here is in clear.
--
-- A PSK's revocation lives in its device_credentials row (same id, kind
-- 'psk'), like every other device credential. Its identity is unique in
-- the whole table: identities are namespaced "<tenant>/...", so the DTLS
-- server can look one up before it knows the tenant.
CREATE TABLE device_psks (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    device_id  TEXT NOT NULL,
    identity   TEXT NOT NULL UNIQUE,
    sealed_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX device_psks_device ON device_psks (tenant_id, device_id);

CREATE TABLE device_token_keys (
    kid        TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    alg        TEXT NOT NULL,
    public_key TEXT NOT NULL,
    sealed_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX device_token_keys_tenant ON device_token_keys (tenant_id, created_at);
