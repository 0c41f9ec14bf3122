package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

func testClaims(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	seedTenant(t, s, "b")
	exp := now().Add(time.Hour)
	tok := &model.Claim{ID: "cl1", TenantID: "a", Name: "batch-7", Models: []string{"em-300", "em-400"}, MaxDevices: 2, ExpiresAt: exp,
		Kind: model.ClaimToken, Hash: []byte{9, 9, 9}, CreatedAt: now(), UpdatedAt: now()}
	crt := &model.Claim{ID: "cl2", TenantID: "a", Name: "batch-8", Models: []string{"em-300"}, MaxDevices: 1, ExpiresAt: exp,
		Kind: model.ClaimCertificate, Fingerprint: "f00d", Serial: "0a", CreatedAt: now(), UpdatedAt: now()}
	mustUpdate(t, s, func(tx store.Tx) error {
		if err := tx.CreateClaim(tok); err != nil {
			return err
		}
		if err := tx.CreateClaim(crt); err != nil {
			return err
		}
		// The same name in another tenant is another claim.
		return tx.CreateClaim(&model.Claim{ID: "cl3", TenantID: "b", Name: "batch-7", MaxDevices: 1, ExpiresAt: exp, Kind: model.ClaimToken,
			Hash: []byte{1}, CreatedAt: now(), UpdatedAt: now()})
	})
	for name, c := range map[string]*model.Claim{
		"same name":        {ID: "x1", TenantID: "a", Name: "batch-7", MaxDevices: 1, ExpiresAt: exp, Kind: model.ClaimToken, Hash: []byte{2}},
		"same hash":        {ID: "x2", TenantID: "b", Name: "other", MaxDevices: 1, ExpiresAt: exp, Kind: model.ClaimToken, Hash: []byte{9, 9, 9}},
		"same fingerprint": {ID: "x3", TenantID: "b", Name: "other2", MaxDevices: 1, ExpiresAt: exp, Kind: model.ClaimCertificate, Fingerprint: "f00d"},
	} {
		if err := s.Update(ctx, func(tx store.Tx) error { return tx.CreateClaim(c) }); !errors.Is(err, store.ErrConflict) {
			t.Errorf("%s: %v, want ErrConflict", name, err)
		}
	}
	_ = s.View(ctx, func(tx store.Tx) error {
		got, err := tx.GetClaim("a", "batch-7")
		if err != nil || got.ID != "cl1" || len(got.Models) != 2 || got.Models[1] != "em-400" || got.MaxDevices != 2 || got.Used != 0 ||
			!got.ExpiresAt.Equal(exp) || got.Kind != model.ClaimToken || string(got.Hash) != string(tok.Hash) || got.RevokedAt != nil {
			t.Errorf("claim round trip: %+v %v", got, err)
		}
		if got, err := tx.GetClaimByHash([]byte{9, 9, 9}); err != nil || got.ID != "cl1" {
			t.Errorf("by hash: %+v %v", got, err)
		}
		if got, err := tx.GetClaimByFingerprint("f00d"); err != nil || got.ID != "cl2" || got.Hash != nil || got.Serial != "0a" {
			t.Errorf("by fingerprint: %+v %v", got, err)
		}
		// A certificate claim has no hash, a token claim no fingerprint:
		// the empty value must match neither.
		if _, err := tx.GetClaimByHash(nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("empty hash: %v", err)
		}
		if _, err := tx.GetClaimByFingerprint(""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("empty fingerprint: %v", err)
		}
		if l, _ := tx.ListClaims("a", store.Page{Limit: 1}); len(l) != 1 || l[0].Name != "batch-7" {
			t.Errorf("claims page 1: %+v", l)
		}
		if l, _ := tx.ListClaims("a", store.Page{After: "batch-7"}); len(l) != 1 || l[0].Name != "batch-8" {
			t.Errorf("claims page 2: %+v", l)
		}
		if l, _ := tx.ListClaims("", store.Page{Limit: -1}); len(l) != 3 {
			t.Errorf("all claims: %d", len(l))
		}
		if _, err := tx.GetClaim("b", "batch-8"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("claim across tenants: %v", err)
		}
		return nil
	})
	// Use up to the maximum, then ErrNotFound; across tenants ErrNotFound.
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.UseClaim("b", "cl1", now()) }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("use across tenants: %v", err)
	}
	for i := 0; i < 2; i++ {
		mustUpdate(t, s, func(tx store.Tx) error { return tx.UseClaim("a", "cl1", now()) })
	}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.UseClaim("a", "cl1", now()) }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("use beyond max: %v, want ErrNotFound", err)
	}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.UseClaim("a", "cl2", exp) }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("use at expiry: %v, want ErrNotFound", err)
	}
	rev := now()
	crt.RevokedAt, crt.RevokeReason, crt.UpdatedAt = &rev, "batch shipped", now()
	mustUpdate(t, s, func(tx store.Tx) error { return tx.UpdateClaim(crt) })
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.UseClaim("a", "cl2", now()) }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("use of revoked claim: %v, want ErrNotFound", err)
	}
	_ = s.View(ctx, func(tx store.Tx) error {
		if got, _ := tx.GetClaim("a", "batch-7"); got.Used != 2 || got.Usable(now()) != "claim-exhausted" {
			t.Errorf("used count: %+v", got)
		}
		if got, _ := tx.GetClaim("a", "batch-8"); got.RevokedAt == nil || !got.RevokedAt.Equal(rev) || got.RevokeReason != "batch shipped" || got.Used != 0 {
			t.Errorf("revocation lost: %+v", got)
		}
		return nil
	})
	// CreateDeviceIfAbsent: false on a taken id, and the transaction stays
	// usable (PostgreSQL would abort it on a unique violation).
	d := &model.Device{ID: "d1", TenantID: "a", Model: "em-300", Status: model.DeviceActive, CreatedAt: now(), UpdatedAt: now()}
	mustUpdate(t, s, func(tx store.Tx) error {
		if ok, err := tx.CreateDeviceIfAbsent(d); err != nil || !ok {
			return fmt.Errorf("first insert: %v %v", ok, err)
		}
		if ok, err := tx.CreateDeviceIfAbsent(d); err != nil || ok {
			return fmt.Errorf("second insert: %v %v", ok, err)
		}
		_, err := tx.GetDevice("a", "d1")
		return err
	})
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeleteTenant("a") })
	_ = s.View(ctx, func(tx store.Tx) error {
		if _, err := tx.GetClaimByHash([]byte{9, 9, 9}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("claim survives its tenant: %v", err)
		}
		return nil
	})
}

// testClaimCountParallel enrolls through one claim from many goroutines at
// once, each in its own transaction doing what the enrollment handler does
// (lock, check, register, count): exactly MaxDevices must win.
func testClaimCountParallel(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	const maxDevices, workers = 3, 12
	c := &model.Claim{ID: "par", TenantID: "a", Name: "par", Models: []string{"m"}, MaxDevices: maxDevices, ExpiresAt: now().Add(time.Hour),
		Kind: model.ClaimToken, Hash: []byte{4, 2}, CreatedAt: now(), UpdatedAt: now()}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.CreateClaim(c) })
	errRefused := errors.New("refused")
	var wg sync.WaitGroup
	results := make(chan error, workers)
	start := make(chan struct{})
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			results <- s.Update(ctx, func(tx store.Tx) error {
				cl, err := tx.LockClaim("a", "par")
				if err != nil {
					return err
				}
				if cl.Usable(now()) != "" {
					return errRefused
				}
				ok, err := tx.CreateDeviceIfAbsent(&model.Device{ID: fmt.Sprintf("dev-%d", i), TenantID: "a", Model: "m", Status: model.DeviceActive,
					CreatedAt: now(), UpdatedAt: now()})
				if err != nil || !ok {
					return fmt.Errorf("register: %v %v", ok, err)
				}
				return tx.UseClaim("a", "par", now())
			})
		}(i)
	}
	close(start)
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, errRefused):
			t.Errorf("enrollment failed instead of being refused: %v", err)
		}
	}
	var devices []model.Device
	var got *model.Claim
	_ = s.View(ctx, func(tx store.Tx) (err error) {
		if got, err = tx.GetClaim("a", "par"); err != nil {
			return err
		}
		devices, err = tx.ListDevices("a", store.Page{Limit: -1})
		return err
	})
	if won != maxDevices || got.Used != maxDevices || len(devices) != maxDevices {
		t.Fatalf("%d enrollments won, used %d, %d devices; want %d of each", won, got.Used, len(devices), maxDevices)
	}
}

func testExternalCAs(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	seedTenant(t, s, "b")
	na := now().Add(365 * 24 * time.Hour)
	ca := &model.ExternalCA{ID: "x1", TenantID: "a", Name: "factory", CertPEM: "-----BEGIN CERTIFICATE-----\n", Fingerprint: "ab12",
		Subject: "CN=Factory", NotAfter: na, Source: "san-uri", Pattern: "spiffe://acme/device/{device}", CreatedAt: now()}
	mustUpdate(t, s, func(tx store.Tx) error {
		if err := tx.CreateExternalCA(ca); err != nil {
			return err
		}
		// Another tenant may register the same CA under the same name.
		c := *ca
		c.ID, c.TenantID = "x2", "b"
		return tx.CreateExternalCA(&c)
	})
	for name, c := range map[string]model.ExternalCA{
		"same name":        {ID: "x3", TenantID: "a", Name: "factory", Fingerprint: "cd", NotAfter: na, Source: "cn"},
		"same certificate": {ID: "x4", TenantID: "a", Name: "again", Fingerprint: "ab12", NotAfter: na, Source: "cn"},
	} {
		if err := s.Update(ctx, func(tx store.Tx) error { return tx.CreateExternalCA(&c) }); !errors.Is(err, store.ErrConflict) {
			t.Errorf("%s: %v, want ErrConflict", name, err)
		}
	}
	_ = s.View(ctx, func(tx store.Tx) error {
		got, err := tx.GetExternalCA("a", "factory")
		if err != nil || got.ID != "x1" || got.CertPEM != ca.CertPEM || got.Fingerprint != "ab12" || got.Subject != "CN=Factory" ||
			!got.NotAfter.Equal(na) || got.Source != "san-uri" || got.Pattern != ca.Pattern {
			t.Errorf("external CA round trip: %+v %v", got, err)
		}
		if l, _ := tx.ListExternalCAs("a", store.Page{}); len(l) != 1 {
			t.Errorf("list: %+v", l)
		}
		if l, _ := tx.ListExternalCAs("", store.Page{Limit: -1}); len(l) != 2 {
			t.Errorf("list all: %+v", l)
		}
		return nil
	})
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeleteExternalCA("b", "factory") })
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.DeleteExternalCA("b", "factory") }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	_ = s.View(ctx, func(tx store.Tx) error {
		if _, err := tx.GetExternalCA("a", "factory"); err != nil {
			t.Errorf("tenant a's CA went with tenant b's: %v", err)
		}
		return nil
	})
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeleteTenant("a") })
	_ = s.View(ctx, func(tx store.Tx) error {
		if l, _ := tx.ListExternalCAs("", store.Page{Limit: -1}); len(l) != 0 {
			t.Errorf("external CAs survive their tenant: %+v", l)
		}
		return nil
	})
}
