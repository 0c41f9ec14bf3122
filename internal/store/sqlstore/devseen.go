package sqlstore

import "time"

// MarkDeviceSeen implements store.Tx. Only the sighting columns (and
// updated_at when the firmware changes) are written, so the flusher never
// overwrites a status or attribute change committed by the admin API.
func (t *tx) MarkDeviceSeen(tenant, id string, at time.Time, firmware string) (string, bool, error) {
	var prev string
	if err := t.queryRow(`SELECT firmware FROM devices WHERE tenant_id = ? AND id = ?`+t.s.dialect.ForUpdate, tenant, id).Scan(&prev); err != nil {
		return "", false, t.s.wrap(err)
	}
	changed := firmware != "" && firmware != prev
	const seen = `UPDATE devices SET first_seen = COALESCE(first_seen, ?),
		last_seen = CASE WHEN last_seen IS NULL OR last_seen < ? THEN ? ELSE last_seen END`
	var err error
	if changed {
		err = t.execOne(seen+`, firmware = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`, us(at), us(at), us(at), firmware, us(at), tenant, id)
	} else {
		err = t.execOne(seen+` WHERE tenant_id = ? AND id = ?`, us(at), us(at), us(at), tenant, id)
	}
	return prev, changed, err
}
