-- Claim (fleet) provisioning and external CAs. A claim is either a token
-- (hash set, fingerprint empty) or a claim certificate (fingerprint set,
-- hash empty); the partial unique indexes make each credential find at
-- most one claim across tenants. used only grows; it is checked and
-- incremented under a row lock in the enrollment transaction.
CREATE TABLE claims (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    name          TEXT NOT NULL,
    models        TEXT NOT NULL DEFAULT '[]',
    max_devices   BIGINT NOT NULL,
    used          BIGINT NOT NULL DEFAULT 0,
    expires_at    BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    hash          TEXT NOT NULL DEFAULT '',
    fingerprint   TEXT NOT NULL DEFAULT '',
    serial        TEXT NOT NULL DEFAULT '',
    revoked_at    BIGINT,
    revoke_reason TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE UNIQUE INDEX claims_hash ON claims (hash) WHERE hash <> '';
CREATE UNIQUE INDEX claims_fingerprint ON claims (fingerprint) WHERE fingerprint <> '';

CREATE TABLE external_cas (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    name        TEXT NOT NULL,
    cert_pem    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    subject     TEXT NOT NULL,
    not_after   BIGINT NOT NULL,
    source      TEXT NOT NULL,
    pattern     TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, fingerprint)
);
