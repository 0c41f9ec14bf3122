package sqlstore

import (
	"encoding/base64"
	"fmt"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// Device secrets (DTLS PSKs, device-token signing keys). Sealed blobs and
// public keys are stored as base64 TEXT, like the tenant CA's sealed key,
// so the schema needs no BLOB/BYTEA split.

var b64 = base64.StdEncoding

const pskCols = `id, tenant_id, device_id, identity, sealed_key, created_at`

func scanPSK(r scanner) (*model.DevicePSK, error) {
	var v model.DevicePSK
	var sealed string
	var c int64
	if err := r.Scan(&v.ID, &v.TenantID, &v.DeviceID, &v.Identity, &sealed, &c); err != nil {
		return nil, err
	}
	key, err := b64.DecodeString(sealed)
	if err != nil {
		return nil, fmt.Errorf("psk %s: sealed key: %w", v.ID, err)
	}
	v.SealedKey, v.CreatedAt = key, fromUS(c)
	return &v, nil
}

func (t *tx) CreateDevicePSK(v *model.DevicePSK) error {
	_, err := t.exec(`INSERT INTO device_psks (`+pskCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		v.ID, v.TenantID, v.DeviceID, v.Identity, b64.EncodeToString(v.SealedKey), us(v.CreatedAt))
	return err
}

func (t *tx) GetDevicePSK(tenant, id string) (*model.DevicePSK, error) {
	v, err := scanPSK(t.queryRow(`SELECT `+pskCols+` FROM device_psks WHERE tenant_id = ? AND id = ?`, tenant, id))
	return v, t.s.wrap(err)
}

func (t *tx) ListDevicePSKs(tenant, deviceID string, p store.Page) ([]model.DevicePSK, error) {
	rows, err := t.query(`SELECT `+pskCols+` FROM device_psks WHERE (? = '' OR tenant_id = ?) AND (? = '' OR device_id = ?) AND id > ? ORDER BY id LIMIT ?`,
		tenant, tenant, deviceID, deviceID, p.After, limitAll(p))
	return collect(t, rows, err, scanPSK)
}

const tokenKeyCols = `kid, tenant_id, alg, public_key, sealed_key, created_at`

func scanTokenKey(r scanner) (*model.DeviceTokenKey, error) {
	var v model.DeviceTokenKey
	var pub, sealed string
	var c int64
	if err := r.Scan(&v.KID, &v.TenantID, &v.Alg, &pub, &sealed, &c); err != nil {
		return nil, err
	}
	var err error
	if v.PublicKey, err = b64.DecodeString(pub); err != nil {
		return nil, fmt.Errorf("token key %s: public key: %w", v.KID, err)
	}
	if v.SealedKey, err = b64.DecodeString(sealed); err != nil {
		return nil, fmt.Errorf("token key %s: sealed key: %w", v.KID, err)
	}
	v.CreatedAt = fromUS(c)
	return &v, nil
}

func (t *tx) CreateDeviceTokenKey(v *model.DeviceTokenKey) error {
	_, err := t.exec(`INSERT INTO device_token_keys (`+tokenKeyCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		v.KID, v.TenantID, v.Alg, b64.EncodeToString(v.PublicKey), b64.EncodeToString(v.SealedKey), us(v.CreatedAt))
	return err
}

func (t *tx) ListDeviceTokenKeys(tenant string) ([]model.DeviceTokenKey, error) {
	rows, err := t.query(`SELECT `+tokenKeyCols+` FROM device_token_keys WHERE (? = '' OR tenant_id = ?) ORDER BY created_at DESC, kid`,
		tenant, tenant)
	return collect(t, rows, err, scanTokenKey)
}
