package sqlstore

import (
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// ---- claims (fleet provisioning)

const claimCols = `id, tenant_id, name, models, max_devices, used, expires_at, kind, hash, fingerprint, serial, revoked_at, revoke_reason, created_at, updated_at`

func scanClaim(r scanner) (*model.Claim, error) {
	var v model.Claim
	var models, kind, hash string
	var maxDev, used, exp, c, u int64
	var rev sql.NullInt64
	if err := r.Scan(&v.ID, &v.TenantID, &v.Name, &models, &maxDev, &used, &exp, &kind, &hash, &v.Fingerprint, &v.Serial, &rev, &v.RevokeReason, &c, &u); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(models), &v.Models); err != nil {
		return nil, fmt.Errorf("claim %s: models: %w", v.ID, err)
	}
	if hash != "" {
		h, err := hex.DecodeString(hash)
		if err != nil {
			return nil, fmt.Errorf("claim %s: hash: %w", v.ID, err)
		}
		v.Hash = h
	}
	v.Kind, v.MaxDevices, v.Used = model.ClaimKind(kind), int(maxDev), int(used)
	v.ExpiresAt, v.RevokedAt, v.CreatedAt, v.UpdatedAt = fromUS(exp), fromNullUS(rev), fromUS(c), fromUS(u)
	return &v, nil
}

func hexOrEmpty(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return hex.EncodeToString(b)
}

func (t *tx) CreateClaim(v *model.Claim) error {
	_, err := t.exec(`INSERT INTO claims (`+claimCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.TenantID, v.Name, jsonText(orEmptySlice(v.Models)), int64(v.MaxDevices), int64(v.Used), us(v.ExpiresAt), string(v.Kind),
		hexOrEmpty(v.Hash), v.Fingerprint, v.Serial, nullUS(v.RevokedAt), v.RevokeReason, us(v.CreatedAt), us(v.UpdatedAt))
	return err
}

func (t *tx) GetClaim(tenant, name string) (*model.Claim, error) {
	v, err := scanClaim(t.queryRow(`SELECT `+claimCols+` FROM claims WHERE tenant_id = ? AND name = ?`, tenant, name))
	return v, t.s.wrap(err)
}

func (t *tx) ListClaims(tenant string, p store.Page) ([]model.Claim, error) {
	rows, err := t.query(`SELECT `+claimCols+` FROM claims WHERE (? = '' OR tenant_id = ?) AND name > ? ORDER BY tenant_id, name LIMIT ?`,
		tenant, tenant, p.After, limitAll(p))
	return collect(t, rows, err, scanClaim)
}

// GetClaimByHash never matches the empty hash of certificate claims: an
// empty argument is ErrNotFound before any query.
func (t *tx) GetClaimByHash(hash []byte) (*model.Claim, error) {
	if len(hash) == 0 {
		return nil, store.ErrNotFound
	}
	v, err := scanClaim(t.queryRow(`SELECT `+claimCols+` FROM claims WHERE hash = ?`, hex.EncodeToString(hash)))
	return v, t.s.wrap(err)
}

func (t *tx) GetClaimByFingerprint(fp string) (*model.Claim, error) {
	if fp == "" {
		return nil, store.ErrNotFound
	}
	v, err := scanClaim(t.queryRow(`SELECT `+claimCols+` FROM claims WHERE fingerprint = ?`, fp))
	return v, t.s.wrap(err)
}

// LockClaim uses the dialect's row lock: on PostgreSQL (READ COMMITTED) a
// second enrollment blocks here until the first commits and then reads
// the incremented count; SQLite's BEGIN IMMEDIATE already serializes
// every writing transaction.
func (t *tx) LockClaim(tenant, id string) (*model.Claim, error) {
	v, err := scanClaim(t.queryRow(`SELECT `+claimCols+` FROM claims WHERE tenant_id = ? AND id = ?`+t.s.dialect.ForUpdate, tenant, id))
	return v, t.s.wrap(err)
}

// UseClaim re-checks every limit in the UPDATE itself, so the count holds
// even for a caller that skipped LockClaim.
func (t *tx) UseClaim(tenant, id string, at time.Time) error {
	return t.execOne(`UPDATE claims SET used = used + 1, updated_at = ?
		WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL AND expires_at > ? AND used < max_devices`,
		us(at), tenant, id, us(at))
}

func (t *tx) UpdateClaim(v *model.Claim) error {
	return t.execOne(`UPDATE claims SET revoked_at = ?, revoke_reason = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
		nullUS(v.RevokedAt), v.RevokeReason, us(v.UpdatedAt), v.TenantID, v.ID)
}

// CreateDeviceIfAbsent uses INSERT ... ON CONFLICT DO NOTHING (SQLite
// 3.24+, PostgreSQL 9.5+): a taken id affects no row and raises no error.
func (t *tx) CreateDeviceIfAbsent(v *model.Device) (bool, error) {
	r, err := t.exec(`INSERT INTO devices (`+deviceCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, id) DO NOTHING`,
		v.TenantID, v.ID, v.Model, v.Serial, jsonText(orEmptySlice(v.Owners)), jsonText(orEmptyMap(v.Attributes)), string(v.Status), v.Firmware,
		nullUS(v.FirstSeen), nullUS(v.LastSeen), us(v.CreatedAt), us(v.UpdatedAt))
	if err != nil {
		return false, err
	}
	n, err := r.RowsAffected()
	return n == 1, err
}

// ---- external CAs

const extCACols = `id, tenant_id, name, cert_pem, fingerprint, subject, not_after, source, pattern, created_at`

func scanExtCA(r scanner) (*model.ExternalCA, error) {
	var v model.ExternalCA
	var na, c int64
	if err := r.Scan(&v.ID, &v.TenantID, &v.Name, &v.CertPEM, &v.Fingerprint, &v.Subject, &na, &v.Source, &v.Pattern, &c); err != nil {
		return nil, err
	}
	v.NotAfter, v.CreatedAt = fromUS(na), fromUS(c)
	return &v, nil
}

func (t *tx) CreateExternalCA(v *model.ExternalCA) error {
	_, err := t.exec(`INSERT INTO external_cas (`+extCACols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.TenantID, v.Name, v.CertPEM, v.Fingerprint, v.Subject, us(v.NotAfter), v.Source, v.Pattern, us(v.CreatedAt))
	return err
}

func (t *tx) GetExternalCA(tenant, name string) (*model.ExternalCA, error) {
	v, err := scanExtCA(t.queryRow(`SELECT `+extCACols+` FROM external_cas WHERE tenant_id = ? AND name = ?`, tenant, name))
	return v, t.s.wrap(err)
}

func (t *tx) ListExternalCAs(tenant string, p store.Page) ([]model.ExternalCA, error) {
	rows, err := t.query(`SELECT `+extCACols+` FROM external_cas WHERE (? = '' OR tenant_id = ?) AND name > ? ORDER BY tenant_id, name LIMIT ?`,
		tenant, tenant, p.After, limitAll(p))
	return collect(t, rows, err, scanExtCA)
}

func (t *tx) DeleteExternalCA(tenant, name string) error {
	return t.execOne(`DELETE FROM external_cas WHERE tenant_id = ? AND name = ?`, tenant, name)
}
