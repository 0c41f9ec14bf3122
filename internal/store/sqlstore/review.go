package sqlstore

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
)

// Review workflow tables (migration 0004). Every query is scoped by
// tenant_id except ListDueReviewSchedules, which the scheduler runs for
// every tenant.

// reviewTables are the review rows that hang off a version, in the order
// they must be deleted before the version itself.
var reviewTables = []string{"version_coauthors", "review_events", "review_schedules"}

func (t *tx) deleteReviewsOfVersion(tenant, versionID string) error {
	for _, table := range reviewTables {
		if _, err := t.exec(`DELETE FROM `+table+` WHERE tenant_id = ? AND version_id = ?`, tenant, versionID); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) deleteReviewsOfAPI(tenant, apiID string) error {
	for _, table := range reviewTables {
		if _, err := t.exec(`DELETE FROM `+table+` WHERE tenant_id = ? AND version_id IN (SELECT id FROM versions WHERE tenant_id = ? AND api_id = ?)`,
			tenant, tenant, apiID); err != nil {
			return err
		}
	}
	return nil
}

// ---- co-authors

func (t *tx) AddCoAuthor(c *model.CoAuthor) error {
	_, err := t.exec(`INSERT INTO version_coauthors (tenant_id, version_id, actor, source, added_by, added_at) VALUES (?, ?, ?, ?, ?, ?)`,
		c.TenantID, c.VersionID, c.Actor, c.Source, c.AddedBy, us(c.AddedAt))
	return err
}

func (t *tx) ListCoAuthors(tenant, versionID string) ([]model.CoAuthor, error) {
	rows, err := t.query(`SELECT tenant_id, version_id, actor, source, added_by, added_at FROM version_coauthors
		WHERE tenant_id = ? AND version_id = ? ORDER BY added_at, actor`, tenant, versionID)
	return collect(t, rows, err, func(r scanner) (*model.CoAuthor, error) {
		var c model.CoAuthor
		var at int64
		if err := r.Scan(&c.TenantID, &c.VersionID, &c.Actor, &c.Source, &c.AddedBy, &at); err != nil {
			return nil, err
		}
		c.AddedAt = fromUS(at)
		return &c, nil
	})
}

// ---- settings

func (t *tx) GetReviewSettings(tenant string) (*model.ReviewSettings, error) {
	var s model.ReviewSettings
	var approvers string
	var at int64
	err := t.queryRow(`SELECT tenant_id, approvals_required, approvers, updated_by, updated_at FROM review_settings WHERE tenant_id = ?`, tenant).
		Scan(&s.TenantID, &s.ApprovalsRequired, &approvers, &s.UpdatedBy, &at)
	if err != nil {
		return nil, t.s.wrap(err)
	}
	if err := json.Unmarshal([]byte(approvers), &s.Approvers); err != nil {
		return nil, fmt.Errorf("review settings of %s: approvers: %w", tenant, err)
	}
	s.UpdatedAt = fromUS(at)
	return &s, nil
}

// PutReviewSettings upserts with ON CONFLICT, which SQLite (3.24+) and
// PostgreSQL spell the same way.
func (t *tx) PutReviewSettings(s *model.ReviewSettings) error {
	_, err := t.exec(`INSERT INTO review_settings (tenant_id, approvals_required, approvers, updated_by, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id) DO UPDATE SET approvals_required = excluded.approvals_required, approvers = excluded.approvers,
		updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
		s.TenantID, s.ApprovalsRequired, jsonText(orEmptySlice(s.Approvers)), s.UpdatedBy, us(s.UpdatedAt))
	return err
}

// LockVersion writes the row without changing it: PostgreSQL then holds
// its row lock until the transaction ends, and SQLite already holds the
// database write lock (BEGIN IMMEDIATE).
func (t *tx) LockVersion(tenant, versionID string) error {
	return t.execOne(`UPDATE versions SET updated_at = updated_at WHERE tenant_id = ? AND id = ?`, tenant, versionID)
}

// ---- events

const reviewEventCols = `id, tenant_id, version_id, round_no, kind, actor, comment, operation, pointer, publish_at, at`

func (t *tx) AddReviewEvent(e *model.ReviewEvent) error {
	_, err := t.exec(`INSERT INTO review_events (`+reviewEventCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.TenantID, e.VersionID, e.Round, string(e.Kind), e.Actor, e.Comment, e.Operation, e.Pointer, nullUS(e.PublishAt), us(e.At))
	return err
}

func (t *tx) ListReviewEvents(tenant, versionID string) ([]model.ReviewEvent, error) {
	rows, err := t.query(`SELECT `+reviewEventCols+` FROM review_events WHERE tenant_id = ? AND version_id = ? ORDER BY at, id`, tenant, versionID)
	return collect(t, rows, err, func(r scanner) (*model.ReviewEvent, error) {
		var e model.ReviewEvent
		var kind string
		var pub sql.NullInt64
		var at int64
		if err := r.Scan(&e.ID, &e.TenantID, &e.VersionID, &e.Round, &kind, &e.Actor, &e.Comment, &e.Operation, &e.Pointer, &pub, &at); err != nil {
			return nil, err
		}
		e.Kind, e.PublishAt, e.At = model.ReviewEventKind(kind), fromNullUS(pub), fromUS(at)
		return &e, nil
	})
}

// ---- schedules

const scheduleCols = `tenant_id, version_id, api_id, label, round_no, publish_at, scheduled_by, created_at`

func scanSchedule(r scanner) (*model.ReviewSchedule, error) {
	var s model.ReviewSchedule
	var pub, c int64
	if err := r.Scan(&s.TenantID, &s.VersionID, &s.APIID, &s.Label, &s.Round, &pub, &s.ScheduledBy, &c); err != nil {
		return nil, err
	}
	s.PublishAt, s.CreatedAt = fromUS(pub), fromUS(c)
	return &s, nil
}

func (t *tx) PutReviewSchedule(s *model.ReviewSchedule) error {
	_, err := t.exec(`INSERT INTO review_schedules (`+scheduleCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id, version_id) DO UPDATE SET api_id = excluded.api_id, label = excluded.label, round_no = excluded.round_no,
		publish_at = excluded.publish_at, scheduled_by = excluded.scheduled_by, created_at = excluded.created_at`,
		s.TenantID, s.VersionID, s.APIID, s.Label, s.Round, us(s.PublishAt), s.ScheduledBy, us(s.CreatedAt))
	return err
}

func (t *tx) GetReviewSchedule(tenant, versionID string) (*model.ReviewSchedule, error) {
	s, err := scanSchedule(t.queryRow(`SELECT `+scheduleCols+` FROM review_schedules WHERE tenant_id = ? AND version_id = ?`, tenant, versionID))
	return s, t.s.wrap(err)
}

func (t *tx) DeleteReviewSchedule(tenant, versionID string) error {
	return t.execOne(`DELETE FROM review_schedules WHERE tenant_id = ? AND version_id = ?`, tenant, versionID)
}

func (t *tx) ListDueReviewSchedules(at time.Time, n int) ([]model.ReviewSchedule, error) {
	if n <= 0 || n > 1000 {
		n = 100
	}
	rows, err := t.query(`SELECT `+scheduleCols+` FROM review_schedules WHERE publish_at <= ? ORDER BY publish_at, tenant_id, version_id LIMIT ?`, us(at), n)
	return collect(t, rows, err, scanSchedule)
}
