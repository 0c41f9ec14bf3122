package sqlstore

import (
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// ---- devices

const deviceCols = `tenant_id, id, model, serial, owners, attributes, status, firmware, first_seen, last_seen, created_at, updated_at`

func scanDevice(r scanner) (*model.Device, error) {
	var v model.Device
	var owners, attrs, status string
	var first, last sql.NullInt64
	var c, u int64
	if err := r.Scan(&v.TenantID, &v.ID, &v.Model, &v.Serial, &owners, &attrs, &status, &v.Firmware, &first, &last, &c, &u); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(owners), &v.Owners); err != nil {
		return nil, fmt.Errorf("device %s: owners: %w", v.ID, err)
	}
	if err := json.Unmarshal([]byte(attrs), &v.Attributes); err != nil {
		return nil, fmt.Errorf("device %s: attributes: %w", v.ID, err)
	}
	v.Status = model.DeviceStatus(status)
	v.FirstSeen, v.LastSeen, v.CreatedAt, v.UpdatedAt = fromNullUS(first), fromNullUS(last), fromUS(c), fromUS(u)
	return &v, nil
}

func (t *tx) CreateDevice(v *model.Device) error {
	_, err := t.exec(`INSERT INTO devices (`+deviceCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.TenantID, v.ID, v.Model, v.Serial, jsonText(orEmptySlice(v.Owners)), jsonText(orEmptyMap(v.Attributes)), string(v.Status), v.Firmware,
		nullUS(v.FirstSeen), nullUS(v.LastSeen), us(v.CreatedAt), us(v.UpdatedAt))
	return err
}

func (t *tx) GetDevice(tenant, id string) (*model.Device, error) {
	v, err := scanDevice(t.queryRow(`SELECT `+deviceCols+` FROM devices WHERE tenant_id = ? AND id = ?`, tenant, id))
	return v, t.s.wrap(err)
}

func (t *tx) ListDevices(tenant string, p store.Page) ([]model.Device, error) {
	rows, err := t.query(`SELECT `+deviceCols+` FROM devices WHERE (? = '' OR tenant_id = ?) AND id > ? ORDER BY tenant_id, id LIMIT ?`,
		tenant, tenant, p.After, limitAll(p))
	return collect(t, rows, err, scanDevice)
}

// UpdateDevice implements store.Tx. The sighting columns only move
// forward, as in MarkDeviceSeen: an admin change made from a read that
// the data plane's flusher has overtaken (the read takes no row lock)
// keeps the newer sighting, and first_seen, once set, stays.
func (t *tx) UpdateDevice(v *model.Device) error {
	last := nullUS(v.LastSeen)
	return t.execOne(`UPDATE devices SET model = ?, serial = ?, owners = ?, attributes = ?, status = ?, firmware = ?,
		first_seen = COALESCE(first_seen, ?),
		last_seen = CASE WHEN last_seen IS NULL OR last_seen < ? THEN ? ELSE last_seen END, updated_at = ?
		WHERE tenant_id = ? AND id = ?`,
		v.Model, v.Serial, jsonText(orEmptySlice(v.Owners)), jsonText(orEmptyMap(v.Attributes)), string(v.Status), v.Firmware,
		nullUS(v.FirstSeen), last, last, us(v.UpdatedAt), v.TenantID, v.ID)
}

func (t *tx) DeleteDevice(tenant, id string) error {
	if _, err := t.exec(`DELETE FROM enrollment_tokens WHERE tenant_id = ? AND device_id = ?`, tenant, id); err != nil {
		return err
	}
	return t.execOne(`DELETE FROM devices WHERE tenant_id = ? AND id = ?`, tenant, id)
}

// ---- device credentials

const credCols = `id, tenant_id, device_id, kind, fingerprint, serial, not_after, revoked_at, revoke_reason, created_at`

func scanCred(r scanner) (*model.DeviceCredential, error) {
	var v model.DeviceCredential
	var kind string
	var na, rev sql.NullInt64
	var c int64
	if err := r.Scan(&v.ID, &v.TenantID, &v.DeviceID, &kind, &v.Fingerprint, &v.Serial, &na, &rev, &v.RevokeReason, &c); err != nil {
		return nil, err
	}
	v.Kind = model.CredentialKind(kind)
	v.NotAfter, v.RevokedAt, v.CreatedAt = fromNullUS(na), fromNullUS(rev), fromUS(c)
	return &v, nil
}

func (t *tx) CreateDeviceCredential(v *model.DeviceCredential) error {
	_, err := t.exec(`INSERT INTO device_credentials (`+credCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.TenantID, v.DeviceID, string(v.Kind), v.Fingerprint, v.Serial, nullUS(v.NotAfter), nullUS(v.RevokedAt), v.RevokeReason, us(v.CreatedAt))
	return err
}

func (t *tx) GetDeviceCredential(tenant, id string) (*model.DeviceCredential, error) {
	v, err := scanCred(t.queryRow(`SELECT `+credCols+` FROM device_credentials WHERE tenant_id = ? AND id = ?`, tenant, id))
	return v, t.s.wrap(err)
}

func (t *tx) ListDeviceCredentials(tenant, deviceID string, p store.Page) ([]model.DeviceCredential, error) {
	rows, err := t.query(`SELECT `+credCols+` FROM device_credentials WHERE (? = '' OR tenant_id = ?) AND (? = '' OR device_id = ?) AND id > ? ORDER BY id LIMIT ?`,
		tenant, tenant, deviceID, deviceID, p.After, limitAll(p))
	return collect(t, rows, err, scanCred)
}

func (t *tx) UpdateDeviceCredential(v *model.DeviceCredential) error {
	return t.execOne(`UPDATE device_credentials SET revoked_at = ?, revoke_reason = ? WHERE tenant_id = ? AND id = ?`,
		nullUS(v.RevokedAt), v.RevokeReason, v.TenantID, v.ID)
}

// ---- tenant CA

// The sealed key is stored as base64 TEXT: the schema stays portable (no
// BLOB/BYTEA split) and the blob is AES-GCM ciphertext, never the key.

func (t *tx) CreateTenantCA(v *model.TenantCA) error {
	_, err := t.exec(`INSERT INTO tenant_cas (tenant_id, key_type, cert_pem, sealed_key, created_at) VALUES (?, ?, ?, ?, ?)`,
		v.TenantID, v.KeyType, string(v.CertPEM), base64.StdEncoding.EncodeToString(v.SealedKey), us(v.CreatedAt))
	return err
}

func (t *tx) GetTenantCA(tenant string) (*model.TenantCA, error) {
	var v model.TenantCA
	var cert, sealed string
	var c int64
	err := t.queryRow(`SELECT tenant_id, key_type, cert_pem, sealed_key, created_at FROM tenant_cas WHERE tenant_id = ?`, tenant).
		Scan(&v.TenantID, &v.KeyType, &cert, &sealed, &c)
	if err != nil {
		return nil, t.s.wrap(err)
	}
	key, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return nil, fmt.Errorf("tenant CA %s: sealed key: %w", tenant, err)
	}
	v.CertPEM, v.SealedKey, v.CreatedAt = []byte(cert), key, fromUS(c)
	return &v, nil
}

// ---- enrollment tokens

const enrollCols = `id, tenant_id, device_id, hash, expires_at, used_at, created_at`

func scanEnroll(r scanner) (*model.EnrollmentToken, error) {
	var v model.EnrollmentToken
	var hash string
	var used sql.NullInt64
	var exp, c int64
	if err := r.Scan(&v.ID, &v.TenantID, &v.DeviceID, &hash, &exp, &used, &c); err != nil {
		return nil, err
	}
	h, err := hex.DecodeString(hash)
	if err != nil {
		return nil, fmt.Errorf("enrollment token %s: hash: %w", v.ID, err)
	}
	v.Hash, v.ExpiresAt, v.UsedAt, v.CreatedAt = h, fromUS(exp), fromNullUS(used), fromUS(c)
	return &v, nil
}

func (t *tx) CreateEnrollmentToken(v *model.EnrollmentToken) error {
	_, err := t.exec(`INSERT INTO enrollment_tokens (`+enrollCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.TenantID, v.DeviceID, hex.EncodeToString(v.Hash), us(v.ExpiresAt), nullUS(v.UsedAt), us(v.CreatedAt))
	return err
}

func (t *tx) GetEnrollmentTokenByHash(hash []byte) (*model.EnrollmentToken, error) {
	v, err := scanEnroll(t.queryRow(`SELECT `+enrollCols+` FROM enrollment_tokens WHERE hash = ?`, hex.EncodeToString(hash)))
	return v, t.s.wrap(err)
}

// UseEnrollmentToken relies on the UPDATE's own re-check of used_at: on
// PostgreSQL a concurrent writer waits for the row lock and then sees the
// row no longer matches; SQLite serializes writers.
func (t *tx) UseEnrollmentToken(tenant, id string, at time.Time) error {
	return t.execOne(`UPDATE enrollment_tokens SET used_at = ? WHERE tenant_id = ? AND id = ? AND used_at IS NULL`, us(at), tenant, id)
}
