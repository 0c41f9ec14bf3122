package sqlstore

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

type tx struct {
	s   *DB
	tx  *sql.Tx
	ctx context.Context
}

var _ store.Tx = (*tx)(nil)

func (t *tx) exec(query string, args ...any) (sql.Result, error) {
	r, err := t.tx.ExecContext(t.ctx, t.s.q(query), args...)
	return r, t.s.wrap(err)
}

// execOne runs a statement that must affect exactly one row; zero rows is
// ErrNotFound (which also covers rows of another tenant).
func (t *tx) execOne(query string, args ...any) error {
	r, err := t.exec(query, args...)
	if err != nil {
		return err
	}
	n, err := r.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func (t *tx) queryRow(query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(t.ctx, t.s.q(query), args...)
}

func (t *tx) query(query string, args ...any) (*sql.Rows, error) {
	r, err := t.tx.QueryContext(t.ctx, t.s.q(query), args...)
	return r, t.s.wrap(err)
}

func limit(p store.Page) int {
	if p.Limit <= 0 || p.Limit > 1000 {
		return 100
	}
	return p.Limit
}

func us(tm time.Time) int64 { return tm.UnixMicro() }

func fromUS(v int64) time.Time { return time.UnixMicro(v).UTC() }

func nullUS(tm *time.Time) sql.NullInt64 {
	if tm == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: tm.UnixMicro(), Valid: true}
}

func fromNullUS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	tm := fromUS(v.Int64)
	return &tm
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// scanner is satisfied by *sql.Row and *sql.Rows.
type scanner interface{ Scan(...any) error }

// collect scans every row with scan, closing rows.
func collect[T any](t *tx, rows *sql.Rows, err error, scan func(scanner) (*T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *v)
	}
	return out, t.s.wrap(rows.Err())
}

// ---- tenants

const tenantCols = `id, display_name, created_at, updated_at`

func scanTenant(r scanner) (*model.Tenant, error) {
	var v model.Tenant
	var c, u int64
	if err := r.Scan(&v.ID, &v.DisplayName, &c, &u); err != nil {
		return nil, err
	}
	v.CreatedAt, v.UpdatedAt = fromUS(c), fromUS(u)
	return &v, nil
}

func (t *tx) CreateTenant(v *model.Tenant) error {
	_, err := t.exec(`INSERT INTO tenants (`+tenantCols+`) VALUES (?, ?, ?, ?)`, v.ID, v.DisplayName, us(v.CreatedAt), us(v.UpdatedAt))
	return err
}

func (t *tx) GetTenant(id string) (*model.Tenant, error) {
	v, err := scanTenant(t.queryRow(`SELECT `+tenantCols+` FROM tenants WHERE id = ?`, id))
	return v, t.s.wrap(err)
}

func (t *tx) ListTenants(p store.Page) ([]model.Tenant, error) {
	rows, err := t.query(`SELECT `+tenantCols+` FROM tenants WHERE id > ? ORDER BY id LIMIT ?`, p.After, limit(p))
	return collect(t, rows, err, scanTenant)
}

func (t *tx) UpdateTenant(v *model.Tenant) error {
	return t.execOne(`UPDATE tenants SET display_name = ?, updated_at = ? WHERE id = ?`, v.DisplayName, us(v.UpdatedAt), v.ID)
}

func (t *tx) DeleteTenant(id string) error {
	for _, table := range []string{"transitions", "version_coauthors", "review_events", "review_schedules", "review_settings", "versions", "apis", "tokens", "operators", "api_keys", "applications", "ownerships",
		"enrollment_tokens", "device_credentials", "tenant_cas", "devices", "governance_settings", "version_usage",
		"device_psks", "device_token_keys", "claims", "external_cas"} {
		if _, err := t.exec(`DELETE FROM `+table+` WHERE tenant_id = ?`, id); err != nil {
			return err
		}
	}
	return t.execOne(`DELETE FROM tenants WHERE id = ?`, id)
}

// ---- operators

const operatorCols = `id, tenant_id, name, email, roles, is_system, created_at, updated_at`

func scanOperator(r scanner) (*model.Operator, error) {
	var v model.Operator
	var roles string
	var sys int
	var c, u int64
	if err := r.Scan(&v.ID, &v.TenantID, &v.Name, &v.Email, &roles, &sys, &c, &u); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(roles), &v.Roles); err != nil {
		return nil, fmt.Errorf("operator %s: roles: %w", v.ID, err)
	}
	v.System = sys != 0
	v.CreatedAt, v.UpdatedAt = fromUS(c), fromUS(u)
	return &v, nil
}

func rolesJSON(r []model.Role) string {
	if r == nil {
		r = []model.Role{}
	}
	b, _ := json.Marshal(r)
	return string(b)
}

func (t *tx) CreateOperator(v *model.Operator) error {
	_, err := t.exec(`INSERT INTO operators (`+operatorCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.TenantID, v.Name, v.Email, rolesJSON(v.Roles), b2i(v.System), us(v.CreatedAt), us(v.UpdatedAt))
	return err
}

func (t *tx) GetOperator(tenant, id string) (*model.Operator, error) {
	v, err := scanOperator(t.queryRow(`SELECT `+operatorCols+` FROM operators WHERE tenant_id = ? AND id = ?`, tenant, id))
	return v, t.s.wrap(err)
}

func (t *tx) GetOperatorByName(tenant, name string) (*model.Operator, error) {
	v, err := scanOperator(t.queryRow(`SELECT `+operatorCols+` FROM operators WHERE tenant_id = ? AND name = ?`, tenant, name))
	return v, t.s.wrap(err)
}

func (t *tx) ListOperators(tenant string, p store.Page) ([]model.Operator, error) {
	rows, err := t.query(`SELECT `+operatorCols+` FROM operators WHERE tenant_id = ? AND name > ? ORDER BY name LIMIT ?`, tenant, p.After, limit(p))
	return collect(t, rows, err, scanOperator)
}

func (t *tx) UpdateOperator(v *model.Operator) error {
	return t.execOne(`UPDATE operators SET email = ?, roles = ?, is_system = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
		v.Email, rolesJSON(v.Roles), b2i(v.System), us(v.UpdatedAt), v.TenantID, v.ID)
}

func (t *tx) DeleteOperator(tenant, id string) error {
	if _, err := t.exec(`DELETE FROM tokens WHERE tenant_id = ? AND operator_id = ?`, tenant, id); err != nil {
		return err
	}
	return t.execOne(`DELETE FROM operators WHERE tenant_id = ? AND id = ?`, tenant, id)
}

// ---- tokens

const tokenCols = `id, tenant_id, operator_id, name, prefix, hash, expires_at, revoked_at, last_used_at, created_at`

func scanToken(r scanner) (*model.Token, error) {
	var v model.Token
	var hash string
	var exp, rev, used sql.NullInt64
	var c int64
	if err := r.Scan(&v.ID, &v.TenantID, &v.OperatorID, &v.Name, &v.Prefix, &hash, &exp, &rev, &used, &c); err != nil {
		return nil, err
	}
	h, err := hex.DecodeString(hash)
	if err != nil {
		return nil, fmt.Errorf("token %s: hash: %w", v.ID, err)
	}
	v.Hash = h
	v.ExpiresAt, v.RevokedAt, v.LastUsedAt = fromNullUS(exp), fromNullUS(rev), fromNullUS(used)
	v.CreatedAt = fromUS(c)
	return &v, nil
}

func (t *tx) CreateToken(v *model.Token) error {
	_, err := t.exec(`INSERT INTO tokens (`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.TenantID, v.OperatorID, v.Name, v.Prefix, hex.EncodeToString(v.Hash),
		nullUS(v.ExpiresAt), nullUS(v.RevokedAt), nullUS(v.LastUsedAt), us(v.CreatedAt))
	return err
}

func (t *tx) GetToken(tenant, id string) (*model.Token, error) {
	v, err := scanToken(t.queryRow(`SELECT `+tokenCols+` FROM tokens WHERE tenant_id = ? AND id = ?`, tenant, id))
	return v, t.s.wrap(err)
}

func (t *tx) GetTokenByHash(hash []byte) (*model.Token, error) {
	v, err := scanToken(t.queryRow(`SELECT `+tokenCols+` FROM tokens WHERE hash = ?`, hex.EncodeToString(hash)))
	return v, t.s.wrap(err)
}

func (t *tx) ListTokens(tenant, operatorID string, p store.Page) ([]model.Token, error) {
	rows, err := t.query(`SELECT `+tokenCols+` FROM tokens WHERE tenant_id = ? AND (? = '' OR operator_id = ?) AND id > ? ORDER BY id LIMIT ?`,
		tenant, operatorID, operatorID, p.After, limit(p))
	return collect(t, rows, err, scanToken)
}

func (t *tx) UpdateToken(v *model.Token) error {
	return t.execOne(`UPDATE tokens SET name = ?, expires_at = ?, revoked_at = ?, last_used_at = ? WHERE tenant_id = ? AND id = ?`,
		v.Name, nullUS(v.ExpiresAt), nullUS(v.RevokedAt), nullUS(v.LastUsedAt), v.TenantID, v.ID)
}

func (t *tx) DeleteToken(tenant, id string) error {
	return t.execOne(`DELETE FROM tokens WHERE tenant_id = ? AND id = ?`, tenant, id)
}

// ---- APIs

const apiCols = `id, tenant_id, name, display_name, description, owner, created_at, updated_at`

func scanAPI(r scanner) (*model.API, error) {
	var v model.API
	var c, u int64
	if err := r.Scan(&v.ID, &v.TenantID, &v.Name, &v.DisplayName, &v.Description, &v.Owner, &c, &u); err != nil {
		return nil, err
	}
	v.CreatedAt, v.UpdatedAt = fromUS(c), fromUS(u)
	return &v, nil
}

func (t *tx) CreateAPI(v *model.API) error {
	_, err := t.exec(`INSERT INTO apis (`+apiCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.TenantID, v.Name, v.DisplayName, v.Description, v.Owner, us(v.CreatedAt), us(v.UpdatedAt))
	return err
}

func (t *tx) GetAPI(tenant, name string) (*model.API, error) {
	v, err := scanAPI(t.queryRow(`SELECT `+apiCols+` FROM apis WHERE tenant_id = ? AND name = ?`, tenant, name))
	return v, t.s.wrap(err)
}

func (t *tx) ListAPIs(tenant string, p store.Page) ([]model.API, error) {
	rows, err := t.query(`SELECT `+apiCols+` FROM apis WHERE tenant_id = ? AND name > ? ORDER BY name LIMIT ?`, tenant, p.After, limit(p))
	return collect(t, rows, err, scanAPI)
}

func (t *tx) UpdateAPI(v *model.API) error {
	return t.execOne(`UPDATE apis SET display_name = ?, description = ?, owner = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
		v.DisplayName, v.Description, v.Owner, us(v.UpdatedAt), v.TenantID, v.ID)
}

func (t *tx) DeleteAPI(tenant, id string) error {
	if err := t.deleteReviewsOfAPI(tenant, id); err != nil {
		return err
	}
	if _, err := t.exec(`DELETE FROM transitions WHERE tenant_id = ? AND version_id IN (SELECT id FROM versions WHERE tenant_id = ? AND api_id = ?)`, tenant, tenant, id); err != nil {
		return err
	}
	if _, err := t.exec(`DELETE FROM versions WHERE tenant_id = ? AND api_id = ?`, tenant, id); err != nil {
		return err
	}
	return t.execOne(`DELETE FROM apis WHERE tenant_id = ? AND id = ?`, tenant, id)
}

// ---- versions

const versionCols = `v.id, v.tenant_id, v.api_id, a.name, v.label, v.state, v.bindings, v.upstream, v.spec_format, v.spec_version, v.spec_content, v.author, v.sunset, v.successor, v.created_at, v.updated_at, v.policy`
const versionFrom = ` FROM versions v JOIN apis a ON a.id = v.api_id AND a.tenant_id = v.tenant_id `

func scanVersion(r scanner) (*model.Version, error) {
	var v model.Version
	var bindings, upstream, sf, sv string
	var content sql.NullString
	var sunset sql.NullInt64
	var c, u int64
	var policy string
	if err := r.Scan(&v.ID, &v.TenantID, &v.APIID, &v.APIName, &v.Label, &v.State, &bindings, &upstream,
		&sf, &sv, &content, &v.Author, &sunset, &v.Successor, &c, &u, &policy); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(policy), &v.Policy); err != nil {
		return nil, fmt.Errorf("version %s: policy: %w", v.ID, err)
	}
	if err := json.Unmarshal([]byte(bindings), &v.Bindings); err != nil {
		return nil, fmt.Errorf("version %s: bindings: %w", v.ID, err)
	}
	if err := json.Unmarshal([]byte(upstream), &v.Upstream); err != nil {
		return nil, fmt.Errorf("version %s: upstream: %w", v.ID, err)
	}
	if content.Valid {
		v.Spec = &model.Spec{Format: sf, Version: sv, Content: content.String}
	}
	v.Sunset = fromNullUS(sunset)
	v.CreatedAt, v.UpdatedAt = fromUS(c), fromUS(u)
	return &v, nil
}

func versionArgs(v *model.Version) (bindings, upstream string, sf, sv string, content sql.NullString, policy string) {
	b, _ := json.Marshal(v.Bindings)
	policy = jsonText(v.Policy)
	u, _ := json.Marshal(v.Upstream)
	if v.Spec != nil {
		sf, sv, content = v.Spec.Format, v.Spec.Version, sql.NullString{String: v.Spec.Content, Valid: true}
	}
	return string(b), string(u), sf, sv, content, policy
}

func (t *tx) CreateVersion(v *model.Version) error {
	b, u, sf, sv, content, policy := versionArgs(v)
	_, err := t.exec(`INSERT INTO versions (id, tenant_id, api_id, label, state, bindings, upstream, spec_format, spec_version, spec_content, author, sunset, successor, created_at, updated_at, policy)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.TenantID, v.APIID, v.Label, string(v.State), b, u, sf, sv, content, v.Author, nullUS(v.Sunset), v.Successor, us(v.CreatedAt), us(v.UpdatedAt), policy)
	return err
}

func (t *tx) GetVersion(tenant, apiID, label string) (*model.Version, error) {
	v, err := scanVersion(t.queryRow(`SELECT `+versionCols+versionFrom+`WHERE v.tenant_id = ? AND v.api_id = ? AND v.label = ?`, tenant, apiID, label))
	return v, t.s.wrap(err)
}

func (t *tx) ListVersions(tenant, apiID string, p store.Page) ([]model.Version, error) {
	rows, err := t.query(`SELECT `+versionCols+versionFrom+`WHERE v.tenant_id = ? AND v.api_id = ? AND v.label > ? ORDER BY v.label LIMIT ?`, tenant, apiID, p.After, limit(p))
	return collect(t, rows, err, scanVersion)
}

func (t *tx) ListVersionsByState(tenant string, states ...model.State) ([]model.Version, error) {
	if len(states) == 0 {
		return []model.Version{}, nil
	}
	args := []any{tenant, tenant}
	ph := make([]string, len(states))
	for i, st := range states {
		ph[i] = "?"
		args = append(args, string(st))
	}
	rows, err := t.query(`SELECT `+versionCols+versionFrom+`WHERE (? = '' OR v.tenant_id = ?) AND v.state IN (`+strings.Join(ph, ", ")+`) ORDER BY v.tenant_id, a.name, v.label`, args...)
	return collect(t, rows, err, scanVersion)
}

func (t *tx) UpdateVersion(v *model.Version) error {
	b, u, sf, sv, content, policy := versionArgs(v)
	return t.execOne(`UPDATE versions SET state = ?, bindings = ?, upstream = ?, spec_format = ?, spec_version = ?, spec_content = ?, sunset = ?, successor = ?, updated_at = ?, policy = ?
		WHERE tenant_id = ? AND id = ?`,
		string(v.State), b, u, sf, sv, content, nullUS(v.Sunset), v.Successor, us(v.UpdatedAt), policy, v.TenantID, v.ID)
}

func (t *tx) DeleteVersion(tenant, id string) error {
	if err := t.deleteReviewsOfVersion(tenant, id); err != nil {
		return err
	}
	if _, err := t.exec(`DELETE FROM transitions WHERE tenant_id = ? AND version_id = ?`, tenant, id); err != nil {
		return err
	}
	return t.execOne(`DELETE FROM versions WHERE tenant_id = ? AND id = ?`, tenant, id)
}

// ---- transitions

func (t *tx) AddTransition(v *model.Transition) error {
	_, err := t.exec(`INSERT INTO transitions (id, tenant_id, version_id, from_state, to_state, actor, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.TenantID, v.VersionID, string(v.From), string(v.To), v.Actor, v.Reason, us(v.At))
	return err
}

func (t *tx) ListTransitions(tenant, versionID string) ([]model.Transition, error) {
	rows, err := t.query(`SELECT id, tenant_id, version_id, from_state, to_state, actor, reason, at FROM transitions WHERE tenant_id = ? AND version_id = ? ORDER BY at, id`, tenant, versionID)
	return collect(t, rows, err, func(r scanner) (*model.Transition, error) {
		var v model.Transition
		var at int64
		if err := r.Scan(&v.ID, &v.TenantID, &v.VersionID, &v.From, &v.To, &v.Actor, &v.Reason, &at); err != nil {
			return nil, err
		}
		v.At = fromUS(at)
		return &v, nil
	})
}

// ---- audit

const auditCols = `tenant_id, seq, actor, action, object_type, object_id, before_digest, after_digest, request_id, detail, at, prev_hash, hash`

func scanAudit(r scanner) (*model.AuditRecord, error) {
	var v model.AuditRecord
	var detail string
	var at int64
	if err := r.Scan(&v.TenantID, &v.Seq, &v.Actor, &v.Action, &v.ObjectType, &v.ObjectID, &v.BeforeDigest, &v.AfterDigest,
		&v.RequestID, &detail, &at, &v.PrevHash, &v.Hash); err != nil {
		return nil, err
	}
	if detail != "" {
		v.Detail = json.RawMessage(detail)
	}
	v.At = fromUS(at)
	return &v, nil
}

func (t *tx) AppendAudit(rec *model.AuditRecord) error {
	// Make sure the head row exists, then read it under a row lock
	// (PostgreSQL FOR UPDATE; SQLite writers are already serialized by
	// BEGIN IMMEDIATE), so concurrent writers chain one after the other.
	if _, err := t.exec(`INSERT INTO audit_head (tenant_id, seq, hash) VALUES (?, 0, ?) ON CONFLICT (tenant_id) DO NOTHING`, rec.TenantID, audit.Genesis); err != nil {
		return err
	}
	var seq int64
	var prev string
	if err := t.queryRow(`SELECT seq, hash FROM audit_head WHERE tenant_id = ?`+t.s.dialect.ForUpdate, rec.TenantID).Scan(&seq, &prev); err != nil {
		return t.s.wrap(err)
	}
	if rec.At.IsZero() {
		rec.At = audit.Now()
	}
	rec.At = rec.At.UTC().Truncate(time.Microsecond)
	rec.Seq = seq + 1
	audit.Seal(prev, rec)
	if _, err := t.exec(`INSERT INTO audit (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rec.TenantID, rec.Seq, rec.Actor, rec.Action, rec.ObjectType, rec.ObjectID, rec.BeforeDigest, rec.AfterDigest,
		rec.RequestID, string(rec.Detail), us(rec.At), rec.PrevHash, rec.Hash); err != nil {
		return err
	}
	return t.execOne(`UPDATE audit_head SET seq = ?, hash = ? WHERE tenant_id = ?`, rec.Seq, rec.Hash, rec.TenantID)
}

func (t *tx) ListAudit(tenant string, f store.AuditFilter) ([]model.AuditRecord, error) {
	where := []string{"tenant_id = ?", "seq > ?"}
	args := []any{tenant, f.AfterSeq}
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.ObjectType != "" {
		add("object_type = ?", f.ObjectType)
	}
	if f.ObjectID != "" {
		add("object_id = ?", f.ObjectID)
	}
	if f.Since > 0 {
		add("at >= ?", f.Since)
	}
	if f.Until > 0 {
		add("at < ?", f.Until)
	}
	args = append(args, limit(store.Page{Limit: f.Limit}))
	rows, err := t.query(`SELECT `+auditCols+` FROM audit WHERE `+strings.Join(where, " AND ")+` ORDER BY seq LIMIT ?`, args...)
	return collect(t, rows, err, scanAudit)
}

func (t *tx) AuditHead(tenant string) (int64, string, error) {
	var seq int64
	var hash string
	err := t.queryRow(`SELECT seq, hash FROM audit_head WHERE tenant_id = ?`, tenant).Scan(&seq, &hash)
	if err == sql.ErrNoRows {
		return 0, "", nil
	}
	return seq, hash, t.s.wrap(err)
}

func (t *tx) AuditTenants() ([]string, error) {
	rows, err := t.query(`SELECT tenant_id FROM audit_head ORDER BY tenant_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
