-- Governance: per-tenant settings of the governance checks, and the
-- data plane's per-version usage, flushed from memory so that usage-aware
-- retirement and the inventory survive a restart.
CREATE TABLE governance_settings (
    tenant_id      TEXT PRIMARY KEY REFERENCES tenants (id),
    lint_levels    TEXT NOT NULL DEFAULT '{}',
    version_budget INTEGER NOT NULL DEFAULT 0,
    api_budgets    TEXT NOT NULL DEFAULT '{}',
    retire_window  BIGINT NOT NULL DEFAULT 0,
    updated_by     TEXT NOT NULL DEFAULT '',
    updated_at     BIGINT NOT NULL
);

-- One row per (version, consumer, device model, firmware). No foreign key
-- to versions: rows are written in batches by a background flusher and
-- must not fail because a draft was deleted meanwhile.
CREATE TABLE version_usage (
    tenant_id  TEXT NOT NULL,
    version_id TEXT NOT NULL,
    consumer   TEXT NOT NULL,
    model      TEXT NOT NULL DEFAULT '',
    firmware   TEXT NOT NULL DEFAULT '',
    calls      BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, version_id, consumer, model, firmware)
);
CREATE INDEX version_usage_seen ON version_usage (tenant_id, last_seen);
