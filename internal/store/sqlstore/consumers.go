package sqlstore

import (
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// ---- applications

const appCols = `id, tenant_id, name, description, attributes, cert_fingerprints, created_at, updated_at`

func scanApp(r scanner) (*model.Application, error) {
	var v model.Application
	var attrs, fps string
	var c, u int64
	if err := r.Scan(&v.ID, &v.TenantID, &v.Name, &v.Description, &attrs, &fps, &c, &u); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(attrs), &v.Attributes); err != nil {
		return nil, fmt.Errorf("application %s: attributes: %w", v.ID, err)
	}
	if err := json.Unmarshal([]byte(fps), &v.CertFingerprints); err != nil {
		return nil, fmt.Errorf("application %s: fingerprints: %w", v.ID, err)
	}
	v.CreatedAt, v.UpdatedAt = fromUS(c), fromUS(u)
	return &v, nil
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func (t *tx) CreateApp(v *model.Application) error {
	_, err := t.exec(`INSERT INTO applications (`+appCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.TenantID, v.Name, v.Description, jsonText(orEmptyMap(v.Attributes)), jsonText(orEmptySlice(v.CertFingerprints)), us(v.CreatedAt), us(v.UpdatedAt))
	return err
}

func orEmptyMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func orEmptySlice(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (t *tx) GetApp(tenant, name string) (*model.Application, error) {
	v, err := scanApp(t.queryRow(`SELECT `+appCols+` FROM applications WHERE tenant_id = ? AND name = ?`, tenant, name))
	return v, t.s.wrap(err)
}

func (t *tx) ListApps(tenant string, p store.Page) ([]model.Application, error) {
	rows, err := t.query(`SELECT `+appCols+` FROM applications WHERE (? = '' OR tenant_id = ?) AND name > ? ORDER BY tenant_id, name LIMIT ?`, tenant, tenant, p.After, limitAll(p))
	return collect(t, rows, err, scanApp)
}

// limitAll is limit, except that a negative Limit means "no limit" (the
// snapshot builder reads everything).
func limitAll(p store.Page) int {
	if p.Limit < 0 {
		return 1 << 30
	}
	return limit(p)
}

func (t *tx) UpdateApp(v *model.Application) error {
	return t.execOne(`UPDATE applications SET description = ?, attributes = ?, cert_fingerprints = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
		v.Description, jsonText(orEmptyMap(v.Attributes)), jsonText(orEmptySlice(v.CertFingerprints)), us(v.UpdatedAt), v.TenantID, v.ID)
}

func (t *tx) DeleteApp(tenant, id string) error {
	if _, err := t.exec(`DELETE FROM api_keys WHERE tenant_id = ? AND app_id = ?`, tenant, id); err != nil {
		return err
	}
	return t.execOne(`DELETE FROM applications WHERE tenant_id = ? AND id = ?`, tenant, id)
}

// ---- API keys

const keyCols = `k.id, k.tenant_id, k.app_id, a.name, k.name, k.prefix, k.hash, k.expires_at, k.revoked_at, k.created_at`
const keyFrom = ` FROM api_keys k JOIN applications a ON a.id = k.app_id AND a.tenant_id = k.tenant_id `

func scanKey(r scanner) (*model.APIKey, error) {
	var v model.APIKey
	var hash string
	var exp, rev sql.NullInt64
	var c int64
	if err := r.Scan(&v.ID, &v.TenantID, &v.AppID, &v.AppName, &v.Name, &v.Prefix, &hash, &exp, &rev, &c); err != nil {
		return nil, err
	}
	h, err := hex.DecodeString(hash)
	if err != nil {
		return nil, fmt.Errorf("api key %s: hash: %w", v.ID, err)
	}
	v.Hash, v.ExpiresAt, v.RevokedAt, v.CreatedAt = h, fromNullUS(exp), fromNullUS(rev), fromUS(c)
	return &v, nil
}

func (t *tx) CreateAPIKey(v *model.APIKey) error {
	_, err := t.exec(`INSERT INTO api_keys (id, tenant_id, app_id, name, prefix, hash, expires_at, revoked_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.TenantID, v.AppID, v.Name, v.Prefix, hex.EncodeToString(v.Hash), nullUS(v.ExpiresAt), nullUS(v.RevokedAt), us(v.CreatedAt))
	return err
}

func (t *tx) GetAPIKey(tenant, id string) (*model.APIKey, error) {
	v, err := scanKey(t.queryRow(`SELECT `+keyCols+keyFrom+`WHERE k.tenant_id = ? AND k.id = ?`, tenant, id))
	return v, t.s.wrap(err)
}

func (t *tx) ListAPIKeys(tenant, appID string, p store.Page) ([]model.APIKey, error) {
	rows, err := t.query(`SELECT `+keyCols+keyFrom+`WHERE (? = '' OR k.tenant_id = ?) AND (? = '' OR k.app_id = ?) AND k.id > ? ORDER BY k.id LIMIT ?`,
		tenant, tenant, appID, appID, p.After, limitAll(p))
	return collect(t, rows, err, scanKey)
}

func (t *tx) UpdateAPIKey(v *model.APIKey) error {
	return t.execOne(`UPDATE api_keys SET name = ?, expires_at = ?, revoked_at = ? WHERE tenant_id = ? AND id = ?`,
		v.Name, nullUS(v.ExpiresAt), nullUS(v.RevokedAt), v.TenantID, v.ID)
}

func (t *tx) DeleteAPIKey(tenant, id string) error {
	return t.execOne(`DELETE FROM api_keys WHERE tenant_id = ? AND id = ?`, tenant, id)
}

// ---- ownership

func (t *tx) AddOwnership(v *model.Ownership) error {
	_, err := t.exec(`INSERT INTO ownerships (tenant_id, subject, object_type, object_id, created_at) VALUES (?, ?, ?, ?, ?)`,
		v.TenantID, v.Subject, v.ObjectType, v.ObjectID, us(v.CreatedAt))
	return err
}

func (t *tx) RemoveOwnership(v *model.Ownership) error {
	return t.execOne(`DELETE FROM ownerships WHERE tenant_id = ? AND subject = ? AND object_type = ? AND object_id = ?`,
		v.TenantID, v.Subject, v.ObjectType, v.ObjectID)
}

func (t *tx) ListOwnerships(tenant string, f store.OwnershipFilter) ([]model.Ownership, error) {
	rows, err := t.query(`SELECT tenant_id, subject, object_type, object_id, created_at FROM ownerships
		WHERE (? = '' OR tenant_id = ?) AND (? = '' OR subject = ?) AND (? = '' OR object_type = ?) AND (? = '' OR object_id = ?)
		AND (subject || '|' || object_type || '|' || object_id) > ? ORDER BY subject, object_type, object_id LIMIT ?`,
		tenant, tenant, f.Subject, f.Subject, f.ObjectType, f.ObjectType, f.ObjectID, f.ObjectID, f.After, limitAll(store.Page{Limit: f.Limit}))
	return collect(t, rows, err, func(r scanner) (*model.Ownership, error) {
		var v model.Ownership
		var c int64
		if err := r.Scan(&v.TenantID, &v.Subject, &v.ObjectType, &v.ObjectID, &c); err != nil {
			return nil, err
		}
		v.CreatedAt = fromUS(c)
		return &v, nil
	})
}
