package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

func testDevices(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	seedTenant(t, s, "b")
	seen := now().Add(-time.Minute)
	d := &model.Device{ID: "meter-00:1A:2B", TenantID: "a", Model: "m1", Serial: "S1", Owners: []string{"user:alice"},
		Attributes: map[string]string{"region": "eu"}, Status: model.DevicePending, Firmware: "1.2.3", FirstSeen: &seen,
		CreatedAt: now(), UpdatedAt: now()}
	notAfter := now().Add(90 * 24 * time.Hour)
	cred := &model.DeviceCredential{ID: "c1", TenantID: "a", DeviceID: d.ID, Kind: model.CredCertificate,
		Fingerprint: "ab", Serial: "0f", NotAfter: &notAfter, CreatedAt: now()}
	mustUpdate(t, s, func(tx store.Tx) error {
		if err := tx.CreateDevice(d); err != nil {
			return err
		}
		if err := tx.CreateDevice(&model.Device{ID: "other", TenantID: "a", Status: model.DeviceActive, CreatedAt: now(), UpdatedAt: now()}); err != nil {
			return err
		}
		// The same id in another tenant is a different device.
		if err := tx.CreateDevice(&model.Device{ID: d.ID, TenantID: "b", Status: model.DeviceActive, CreatedAt: now(), UpdatedAt: now()}); err != nil {
			return err
		}
		return tx.CreateDeviceCredential(cred)
	})
	if err := s.Update(ctx, func(tx store.Tx) error { c := *d; return tx.CreateDevice(&c) }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate device id: %v, want ErrConflict", err)
	}
	_ = s.View(ctx, func(tx store.Tx) error {
		got, err := tx.GetDevice("a", d.ID)
		if err != nil || got.Model != "m1" || got.Owners[0] != "user:alice" || got.Attributes["region"] != "eu" ||
			got.Status != model.DevicePending || !got.FirstSeen.Equal(seen) || got.LastSeen != nil {
			t.Errorf("device round trip: %+v %v", got, err)
		}
		list, err := tx.ListDevices("a", store.Page{Limit: 1})
		if err != nil || len(list) != 1 || list[0].ID != d.ID {
			t.Errorf("device page 1: %+v %v", list, err)
		}
		list, _ = tx.ListDevices("a", store.Page{After: d.ID})
		if len(list) != 1 || list[0].ID != "other" {
			t.Errorf("device page 2: %+v", list)
		}
		if all, _ := tx.ListDevices("", store.Page{Limit: -1}); len(all) != 3 {
			t.Errorf("all devices: %d", len(all))
		}
		c, err := tx.GetDeviceCredential("a", "c1")
		if err != nil || c.Kind != model.CredCertificate || c.Fingerprint != "ab" || !c.NotAfter.Equal(notAfter) || !c.Live(now()) {
			t.Errorf("credential round trip: %+v %v", c, err)
		}
		if cs, _ := tx.ListDeviceCredentials("a", d.ID, store.Page{}); len(cs) != 1 {
			t.Errorf("credentials of device: %d", len(cs))
		}
		if cs, _ := tx.ListDeviceCredentials("", "", store.Page{Limit: -1}); len(cs) != 1 {
			t.Errorf("all credentials: %d", len(cs))
		}
		return nil
	})
	// Tenant isolation: tenant b sees nothing of tenant a's.
	for name, fn := range map[string]func(tx store.Tx) error{
		"GetDeviceCredential": func(tx store.Tx) error { _, err := tx.GetDeviceCredential("b", "c1"); return err },
		"UpdateDeviceCredential": func(tx store.Tx) error {
			c := *cred
			c.TenantID = "b"
			return tx.UpdateDeviceCredential(&c)
		},
		"UpdateDevice": func(tx store.Tx) error { c := *d; c.TenantID, c.ID = "b", "other"; return tx.UpdateDevice(&c) },
		"DeleteDevice": func(tx store.Tx) error { return tx.DeleteDevice("b", "other") },
		"GetDevice":    func(tx store.Tx) error { _, err := tx.GetDevice("b", "other"); return err },
	} {
		if err := s.Update(ctx, fn); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s across tenants: %v, want ErrNotFound", name, err)
		}
	}
	_ = s.View(ctx, func(tx store.Tx) error {
		if cs, _ := tx.ListDeviceCredentials("b", "", store.Page{}); len(cs) != 0 {
			t.Errorf("tenant b sees %d credentials of tenant a", len(cs))
		}
		return nil
	})
	// Update and revoke.
	last := now()
	d.Status, d.LastSeen, d.Attributes, d.UpdatedAt = model.DeviceSuspended, &last, nil, now()
	rev := now()
	cred.RevokedAt, cred.RevokeReason = &rev, "keyCompromise"
	mustUpdate(t, s, func(tx store.Tx) error {
		if err := tx.UpdateDevice(d); err != nil {
			return err
		}
		return tx.UpdateDeviceCredential(cred)
	})
	_ = s.View(ctx, func(tx store.Tx) error {
		got, _ := tx.GetDevice("a", d.ID)
		if got.Status != model.DeviceSuspended || !got.LastSeen.Equal(last) || len(got.Attributes) != 0 {
			t.Errorf("device update lost: %+v", got)
		}
		c, _ := tx.GetDeviceCredential("a", "c1")
		if c.RevokedAt == nil || c.RevokeReason != "keyCompromise" || c.Live(now()) {
			t.Errorf("revocation lost: %+v", c)
		}
		return nil
	})
	// Deleting the device keeps its credentials for the CRL.
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeleteDevice("a", d.ID) })
	_ = s.View(ctx, func(tx store.Tx) error {
		if _, err := tx.GetDevice("a", d.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted device: %v", err)
		}
		if _, err := tx.GetDevice("b", d.ID); err != nil {
			t.Errorf("tenant b's device went with tenant a's: %v", err)
		}
		if _, err := tx.GetDeviceCredential("a", "c1"); err != nil {
			t.Errorf("credential of deleted device: %v", err)
		}
		return nil
	})
}

func testTenantCAAndEnrollment(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	seedTenant(t, s, "b")
	ca := &model.TenantCA{TenantID: "a", KeyType: "ecdsa-p256", CertPEM: []byte("-----BEGIN CERTIFICATE-----\n"), SealedKey: []byte{1, 0, 255}, CreatedAt: now()}
	exp := now().Add(time.Hour)
	tok := &model.EnrollmentToken{ID: "e1", TenantID: "a", DeviceID: "d1", Hash: []byte{7, 7}, ExpiresAt: exp, CreatedAt: now()}
	mustUpdate(t, s, func(tx store.Tx) error {
		if err := tx.CreateTenantCA(ca); err != nil {
			return err
		}
		return tx.CreateEnrollmentToken(tok)
	})
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.CreateTenantCA(ca) }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second CA: %v, want ErrConflict", err)
	}
	_ = s.View(ctx, func(tx store.Tx) error {
		got, err := tx.GetTenantCA("a")
		if err != nil || got.KeyType != "ecdsa-p256" || string(got.CertPEM) != string(ca.CertPEM) || string(got.SealedKey) != string(ca.SealedKey) {
			t.Errorf("CA round trip: %+v %v", got, err)
		}
		if _, err := tx.GetTenantCA("b"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("CA of tenant b: %v", err)
		}
		e, err := tx.GetEnrollmentTokenByHash([]byte{7, 7})
		if err != nil || e.DeviceID != "d1" || !e.ExpiresAt.Equal(exp) || e.UsedAt != nil {
			t.Errorf("enrollment token: %+v %v", e, err)
		}
		if _, err := tx.GetEnrollmentTokenByHash([]byte{8}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown hash: %v", err)
		}
		return nil
	})
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.UseEnrollmentToken("b", "e1", now()) }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("use across tenants: %v", err)
	}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.UseEnrollmentToken("a", "e1", now()) })
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.UseEnrollmentToken("a", "e1", now()) }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second use: %v, want ErrNotFound", err)
	}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeleteTenant("a") })
	_ = s.View(ctx, func(tx store.Tx) error {
		if _, err := tx.GetEnrollmentTokenByHash([]byte{7, 7}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("token survives its tenant: %v", err)
		}
		return nil
	})
}
