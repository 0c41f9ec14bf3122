package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// testDeviceSeen checks MarkDeviceSeen: first_seen is set once, last_seen
// only moves forward, firmware changes are reported once, the other
// columns are untouched, and tenants are isolated.
func testDeviceSeen(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	seedTenant(t, s, "b")
	created := now().Add(-time.Hour)
	mustUpdate(t, s, func(tx store.Tx) error {
		return tx.CreateDevice(&model.Device{ID: "d1", TenantID: "a", Status: model.DeviceActive, Firmware: "1.0.0",
			Attributes: map[string]string{"region": "eu"}, CreatedAt: created, UpdatedAt: created})
	})
	t0 := now().Truncate(time.Microsecond)
	tests := []struct {
		name       string
		at         time.Time
		firmware   string
		wantPrev   string
		wantChange bool
		wantLast   time.Time
		wantFW     string
	}{
		{"first sighting, no firmware", t0, "", "1.0.0", false, t0, "1.0.0"},
		{"later, same firmware", t0.Add(time.Second), "1.0.0", "1.0.0", false, t0.Add(time.Second), "1.0.0"},
		{"later, new firmware", t0.Add(2 * time.Second), "1.4.2", "1.0.0", true, t0.Add(2 * time.Second), "1.4.2"},
		{"older sighting does not move last_seen back", t0.Add(-time.Minute), "", "1.4.2", false, t0.Add(2 * time.Second), "1.4.2"},
	}
	for _, tc := range tests {
		var prev string
		var changed bool
		mustUpdate(t, s, func(tx store.Tx) (err error) {
			prev, changed, err = tx.MarkDeviceSeen("a", "d1", tc.at, tc.firmware)
			return err
		})
		if prev != tc.wantPrev || changed != tc.wantChange {
			t.Errorf("%s: previous %q changed %v, want %q %v", tc.name, prev, changed, tc.wantPrev, tc.wantChange)
		}
		_ = s.View(ctx, func(tx store.Tx) error {
			d, err := tx.GetDevice("a", "d1")
			if err != nil {
				return err
			}
			if d.FirstSeen == nil || !d.FirstSeen.Equal(t0) || d.LastSeen == nil || !d.LastSeen.Equal(tc.wantLast) || d.Firmware != tc.wantFW {
				t.Errorf("%s: first %v last %v firmware %q, want %v %v %q", tc.name, d.FirstSeen, d.LastSeen, d.Firmware, t0, tc.wantLast, tc.wantFW)
			}
			if d.Status != model.DeviceActive || d.Attributes["region"] != "eu" || !d.CreatedAt.Equal(created) {
				t.Errorf("%s: other columns changed: %+v", tc.name, d)
			}
			if tc.wantChange != d.UpdatedAt.Equal(tc.at) {
				t.Errorf("%s: updated_at %v (firmware change should move it, a sighting should not)", tc.name, d.UpdatedAt)
			}
			return nil
		})
	}
	// An admin update made from a read the flusher has since overtaken
	// keeps the newer sighting; its own changes land.
	var stale *model.Device
	_ = s.View(ctx, func(tx store.Tx) (err error) { stale, err = tx.GetDevice("a", "d1"); return err })
	newer := t0.Add(time.Hour)
	mustUpdate(t, s, func(tx store.Tx) error { _, _, err := tx.MarkDeviceSeen("a", "d1", newer, ""); return err })
	stale.Status, stale.FirstSeen, stale.UpdatedAt = model.DeviceSuspended, nil, now()
	mustUpdate(t, s, func(tx store.Tx) error { return tx.UpdateDevice(stale) })
	_ = s.View(ctx, func(tx store.Tx) error {
		d, err := tx.GetDevice("a", "d1")
		if err != nil {
			return err
		}
		if d.Status != model.DeviceSuspended || d.LastSeen == nil || !d.LastSeen.Equal(newer) || d.FirstSeen == nil || !d.FirstSeen.Equal(t0) {
			t.Errorf("update from a stale read: status %s first %v last %v, want suspended, %v, %v", d.Status, d.FirstSeen, d.LastSeen, t0, newer)
		}
		return nil
	})
	for _, who := range [][2]string{{"b", "d1"}, {"a", "nope"}} {
		err := s.Update(ctx, func(tx store.Tx) error { _, _, err := tx.MarkDeviceSeen(who[0], who[1], t0, "2.0.0"); return err })
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("MarkDeviceSeen(%s/%s): %v, want ErrNotFound", who[0], who[1], err)
		}
	}
}
