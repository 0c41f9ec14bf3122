-- Review workflow (governance): co-authors of versions, per-tenant review
-- settings, review events numbered by review round, and scheduled
-- publications. Times are unix microseconds, as elsewhere.
CREATE TABLE version_coauthors (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    version_id TEXT NOT NULL REFERENCES versions (id),
    actor      TEXT NOT NULL,
    source     TEXT NOT NULL,
    added_by   TEXT NOT NULL,
    added_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, version_id, actor)
);

CREATE TABLE review_settings (
    tenant_id          TEXT PRIMARY KEY REFERENCES tenants (id),
    approvals_required INTEGER NOT NULL,
    approvers          TEXT NOT NULL DEFAULT '[]',
    updated_by         TEXT NOT NULL,
    updated_at         BIGINT NOT NULL
);

CREATE TABLE review_events (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    version_id TEXT NOT NULL REFERENCES versions (id),
    round_no   INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    comment    TEXT NOT NULL DEFAULT '',
    operation  TEXT NOT NULL DEFAULT '',
    pointer    TEXT NOT NULL DEFAULT '',
    publish_at BIGINT,
    at         BIGINT NOT NULL
);
CREATE INDEX review_events_version ON review_events (tenant_id, version_id, at);
-- One approval per reviewer and round, even under concurrent requests.
CREATE UNIQUE INDEX review_events_one_approval ON review_events (tenant_id, version_id, round_no, actor) WHERE kind = 'approval';

CREATE TABLE review_schedules (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    version_id   TEXT NOT NULL REFERENCES versions (id),
    api_id       TEXT NOT NULL,
    label        TEXT NOT NULL,
    round_no     INTEGER NOT NULL,
    publish_at   BIGINT NOT NULL,
    scheduled_by TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, version_id)
);
CREATE INDEX review_schedules_due ON review_schedules (publish_at);
