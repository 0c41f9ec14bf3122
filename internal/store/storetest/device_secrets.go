package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// testDeviceSecrets: PSKs round-trip with their sealed bytes intact, are
// tenant-scoped, have globally unique identities, and go with their
// tenant; signing keys list newest first per tenant.
func testDeviceSecrets(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	seedTenant(t, s, "b")
	sealed := []byte{0x01, 0x00, 0xff, 0x10, 0x80} // arbitrary bytes, including NUL and high bytes
	psk := &model.DevicePSK{ID: "p1", TenantID: "a", DeviceID: "d1", Identity: "a/d1/x", SealedKey: sealed, CreatedAt: now()}
	mustUpdate(t, s, func(tx store.Tx) error {
		if err := tx.CreateDevicePSK(psk); err != nil {
			return err
		}
		return tx.CreateDevicePSK(&model.DevicePSK{ID: "p2", TenantID: "a", DeviceID: "d2", Identity: "a/d2/x", SealedKey: []byte{2}, CreatedAt: now()})
	})
	err := s.Update(ctx, func(tx store.Tx) error {
		return tx.CreateDevicePSK(&model.DevicePSK{ID: "p3", TenantID: "b", DeviceID: "d1", Identity: "a/d1/x", SealedKey: []byte{3}, CreatedAt: now()})
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate identity: %v, want ErrConflict", err)
	}
	old := now().Add(-time.Hour)
	keys := []*model.DeviceTokenKey{
		{TenantID: "a", KID: "k-old", Alg: "EdDSA", PublicKey: bytes.Repeat([]byte{1}, 32), SealedKey: []byte{9, 0, 9}, CreatedAt: old},
		{TenantID: "a", KID: "k-new", Alg: "EdDSA", PublicKey: bytes.Repeat([]byte{2}, 32), SealedKey: []byte{8}, CreatedAt: now()},
		{TenantID: "b", KID: "k-b", Alg: "EdDSA", PublicKey: bytes.Repeat([]byte{3}, 32), SealedKey: []byte{7}, CreatedAt: now()},
	}
	mustUpdate(t, s, func(tx store.Tx) error {
		for _, k := range keys {
			if err := tx.CreateDeviceTokenKey(k); err != nil {
				return err
			}
		}
		return nil
	})
	_ = s.View(ctx, func(tx store.Tx) error {
		got, err := tx.GetDevicePSK("a", "p1")
		if err != nil || got.Identity != "a/d1/x" || got.DeviceID != "d1" || !bytes.Equal(got.SealedKey, sealed) || !got.CreatedAt.Equal(psk.CreatedAt) {
			t.Errorf("psk round trip: %+v %v", got, err)
		}
		if _, err := tx.GetDevicePSK("b", "p1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("psk of another tenant: %v, want ErrNotFound", err)
		}
		if l, _ := tx.ListDevicePSKs("a", "d1", store.Page{}); len(l) != 1 || l[0].ID != "p1" {
			t.Errorf("psks of d1: %+v", l)
		}
		if l, _ := tx.ListDevicePSKs("", "", store.Page{Limit: -1}); len(l) != 2 {
			t.Errorf("all psks: %d", len(l))
		}
		if l, _ := tx.ListDevicePSKs("a", "", store.Page{Limit: 1, After: "p1"}); len(l) != 1 || l[0].ID != "p2" {
			t.Errorf("psk page 2: %+v", l)
		}
		ka, err := tx.ListDeviceTokenKeys("a")
		if err != nil || len(ka) != 2 || ka[0].KID != "k-new" || ka[1].KID != "k-old" ||
			!bytes.Equal(ka[1].PublicKey, keys[0].PublicKey) || !bytes.Equal(ka[1].SealedKey, keys[0].SealedKey) || ka[1].Alg != "EdDSA" {
			t.Errorf("keys of a (newest first): %+v %v", ka, err)
		}
		if all, _ := tx.ListDeviceTokenKeys(""); len(all) != 3 {
			t.Errorf("all keys: %d", len(all))
		}
		return nil
	})
	// A rolled-back creation leaves nothing.
	_ = s.Update(ctx, func(tx store.Tx) error {
		_ = tx.CreateDevicePSK(&model.DevicePSK{ID: "p9", TenantID: "b", DeviceID: "d", Identity: "b/d/9", SealedKey: []byte{1}, CreatedAt: now()})
		return errors.New("abort")
	})
	if err := s.View(ctx, func(tx store.Tx) error { _, err := tx.GetDevicePSK("b", "p9"); return err }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rolled-back psk: %v", err)
	}
	// Deleting a tenant removes its secrets.
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeleteTenant("a") })
	_ = s.View(ctx, func(tx store.Tx) error {
		if l, _ := tx.ListDevicePSKs("", "", store.Page{Limit: -1}); len(l) != 0 {
			t.Errorf("psks after tenant delete: %+v", l)
		}
		if l, _ := tx.ListDeviceTokenKeys(""); len(l) != 1 || l[0].KID != "k-b" {
			t.Errorf("keys after tenant delete: %+v", l)
		}
		return nil
	})
}
