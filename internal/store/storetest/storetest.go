// Package storetest is the conformance suite every store.Store backend must
// pass (after Vault's ExerciseBackend): the same behaviour, checked the same
// way, on SQLite and PostgreSQL.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// Exercise runs the suite. open returns a new, empty store for each subtest.
func Exercise(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"TenantCRUD", testTenantCRUD},
		{"TenantIsolation", testTenantIsolation},
		{"UniqueConflicts", testUniqueConflicts},
		{"RollbackLeavesNothing", testRollback},
		{"VersionRoundTrip", testVersionRoundTrip},
		{"TokensByHash", testTokens},
		{"AuditChainConcurrent", testAuditConcurrent},
		{"Pagination", testPagination},
		{"DeleteTenantKeepsAudit", testDeleteTenantKeepsAudit},
		{"ConsumersAndOwnership", testConsumers},
		{"DevicesAndCredentials", testDevices},
		{"TenantCAAndEnrollment", testTenantCAAndEnrollment},
		{"GovernanceSettings", testGovernanceSettings},
		{"VersionUsage", testVersionUsage},
		{"DeviceSecrets", testDeviceSecrets},
		{"Claims", testClaims},
		{"ClaimCountParallel", testClaimCountParallel},
		{"ExternalCAs", testExternalCAs},
		{"DeviceSeen", testDeviceSeen},
		{"ReviewSettings", testReviewSettings}, {"ReviewEvents", testReviewEvents}, {"ReviewSchedules", testReviewSchedules}, {"LockVersion", testLockVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			tc.fn(t, s)
		})
	}
}

var ctx = context.Background()

func now() time.Time { return audit.Now() }

func mustUpdate(t *testing.T, s store.Store, fn func(store.Tx) error) {
	t.Helper()
	if err := s.Update(ctx, fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

func seedTenant(t *testing.T, s store.Store, id string) {
	t.Helper()
	mustUpdate(t, s, func(tx store.Tx) error {
		return tx.CreateTenant(&model.Tenant{ID: id, DisplayName: id, CreatedAt: now(), UpdatedAt: now()})
	})
}

func seedAPI(t *testing.T, s store.Store, tenant, name string) *model.API {
	t.Helper()
	a := &model.API{ID: tenant + "-" + name, TenantID: tenant, Name: name, Owner: "team", CreatedAt: now(), UpdatedAt: now()}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.CreateAPI(a) })
	return a
}

func testTenantCRUD(t *testing.T, s store.Store) {
	seedTenant(t, s, "acme")
	var got *model.Tenant
	if err := s.View(ctx, func(tx store.Tx) (err error) { got, err = tx.GetTenant("acme"); return }); err != nil {
		t.Fatal(err)
	}
	if got.ID != "acme" || got.DisplayName != "acme" || got.CreatedAt.IsZero() {
		t.Fatalf("got %+v", got)
	}
	got.DisplayName = "ACME Corp"
	mustUpdate(t, s, func(tx store.Tx) error { return tx.UpdateTenant(got) })
	_ = s.View(ctx, func(tx store.Tx) (err error) { got, err = tx.GetTenant("acme"); return })
	if got.DisplayName != "ACME Corp" {
		t.Fatalf("update lost: %+v", got)
	}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeleteTenant("acme") })
	err := s.View(ctx, func(tx store.Tx) error { _, err := tx.GetTenant("acme"); return err })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: %v, want ErrNotFound", err)
	}
	err = s.Update(ctx, func(tx store.Tx) error { return tx.DeleteTenant("acme") })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v, want ErrNotFound", err)
	}
}

func testTenantIsolation(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	seedTenant(t, s, "b")
	api := seedAPI(t, s, "a", "vehicles")
	v := &model.Version{ID: "v-1", TenantID: "a", APIID: api.ID, Label: "v1", State: model.StateDraft, Author: "x", CreatedAt: now(), UpdatedAt: now()}
	op := &model.Operator{ID: "op-a", TenantID: "a", Name: "alice", Roles: []model.Role{model.RoleAdmin}, CreatedAt: now(), UpdatedAt: now()}
	tok := &model.Token{ID: "tok-a", TenantID: "a", OperatorID: "op-a", Name: "t", Prefix: "fgt_", Hash: []byte{1, 2, 3}, CreatedAt: now()}
	mustUpdate(t, s, func(tx store.Tx) error {
		if err := tx.CreateVersion(v); err != nil {
			return err
		}
		if err := tx.CreateOperator(op); err != nil {
			return err
		}
		return tx.CreateToken(tok)
	})
	checks := []struct {
		name string
		fn   func(tx store.Tx) error
	}{
		{"GetAPI", func(tx store.Tx) error { _, err := tx.GetAPI("b", "vehicles"); return err }},
		{"GetVersion", func(tx store.Tx) error { _, err := tx.GetVersion("b", api.ID, "v1"); return err }},
		{"GetOperator", func(tx store.Tx) error { _, err := tx.GetOperator("b", "op-a"); return err }},
		{"GetOperatorByName", func(tx store.Tx) error { _, err := tx.GetOperatorByName("b", "alice"); return err }},
		{"GetToken", func(tx store.Tx) error { _, err := tx.GetToken("b", "tok-a"); return err }},
		{"UpdateAPI", func(tx store.Tx) error { c := *api; c.TenantID = "b"; return tx.UpdateAPI(&c) }},
		{"UpdateVersion", func(tx store.Tx) error { c := *v; c.TenantID = "b"; return tx.UpdateVersion(&c) }},
		{"UpdateOperator", func(tx store.Tx) error { c := *op; c.TenantID = "b"; return tx.UpdateOperator(&c) }},
		{"UpdateToken", func(tx store.Tx) error { c := *tok; c.TenantID = "b"; return tx.UpdateToken(&c) }},
		{"DeleteAPI", func(tx store.Tx) error { return tx.DeleteAPI("b", api.ID) }},
		{"DeleteVersion", func(tx store.Tx) error { return tx.DeleteVersion("b", v.ID) }},
		{"DeleteOperator", func(tx store.Tx) error { return tx.DeleteOperator("b", op.ID) }},
		{"DeleteToken", func(tx store.Tx) error { return tx.DeleteToken("b", tok.ID) }},
	}
	for _, c := range checks {
		err := s.Update(ctx, c.fn)
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s across tenants: %v, want ErrNotFound", c.name, err)
		}
	}
	var apis []model.API
	var versions []model.Version
	_ = s.View(ctx, func(tx store.Tx) (err error) {
		if apis, err = tx.ListAPIs("b", store.Page{}); err != nil {
			return err
		}
		versions, err = tx.ListVersionsByState("b", model.StateDraft)
		return err
	})
	if len(apis) != 0 || len(versions) != 0 {
		t.Errorf("tenant b sees %d apis, %d versions of tenant a", len(apis), len(versions))
	}
	// Everything of tenant a is still there.
	if err := s.View(ctx, func(tx store.Tx) error {
		if _, err := tx.GetVersion("a", api.ID, "v1"); err != nil {
			return err
		}
		_, err := tx.GetToken("a", tok.ID)
		return err
	}); err != nil {
		t.Fatalf("tenant a lost data: %v", err)
	}
}

func testUniqueConflicts(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	seedTenant(t, s, "b")
	seedAPI(t, s, "a", "meters")
	err := s.Update(ctx, func(tx store.Tx) error {
		return tx.CreateAPI(&model.API{ID: "other", TenantID: "a", Name: "meters", Owner: "x", CreatedAt: now(), UpdatedAt: now()})
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate API name: %v, want ErrConflict", err)
	}
	// The same name in another tenant is fine.
	seedAPI(t, s, "b", "meters")
	err = s.Update(ctx, func(tx store.Tx) error {
		return tx.CreateTenant(&model.Tenant{ID: "a", CreatedAt: now(), UpdatedAt: now()})
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate tenant: %v, want ErrConflict", err)
	}
}

func testRollback(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx store.Tx) error {
		for i := 0; i < 5; i++ {
			if err := tx.CreateAPI(&model.API{ID: fmt.Sprint("id", i), TenantID: "a", Name: fmt.Sprint("api", i), Owner: "o", CreatedAt: now(), UpdatedAt: now()}); err != nil {
				return err
			}
			if err := tx.AppendAudit(&model.AuditRecord{TenantID: "a", Actor: "x", Action: "api.create", ObjectType: "api", ObjectID: fmt.Sprint("id", i)}); err != nil {
				return err
			}
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	var apis []model.API
	var seq int64
	_ = s.View(ctx, func(tx store.Tx) (err error) {
		if apis, err = tx.ListAPIs("a", store.Page{}); err != nil {
			return err
		}
		seq, _, err = tx.AuditHead("a")
		return err
	})
	if len(apis) != 0 || seq != 0 {
		t.Fatalf("rolled back transaction left %d apis and audit seq %d", len(apis), seq)
	}
}

func testVersionRoundTrip(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	api := seedAPI(t, s, "a", "vehicles")
	sunset := now().Add(48 * time.Hour)
	v := &model.Version{
		ID: "v1", TenantID: "a", APIID: api.ID, Label: "v1.2.0", State: model.StateDraft, Author: "alice",
		Bindings: model.Bindings{
			HTTP: &model.HTTPBinding{BasePath: "/v1", Operations: []model.HTTPOperation{{Method: "GET", Path: "/vehicles/{vin}", OperationID: "getVehicle"}}},
			MQTT: &model.MQTTBinding{Channels: []model.MQTTChannel{{Topic: "fleet/{deviceId}/telemetry", Action: "publish"}}},
		},
		Upstream:  model.Upstream{Targets: []string{"http://127.0.0.1:9000"}},
		Spec:      &model.Spec{Format: "openapi", Version: "3.1.0", Content: "openapi: 3.1.0\n# verbatim, comments kept\n"},
		Sunset:    &sunset,
		CreatedAt: now(), UpdatedAt: now(),
	}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.CreateVersion(v) })
	var got *model.Version
	_ = s.View(ctx, func(tx store.Tx) (err error) { got, err = tx.GetVersion("a", api.ID, "v1.2.0"); return })
	if got == nil || got.APIName != "vehicles" || got.Spec == nil || got.Spec.Content != v.Spec.Content ||
		got.Bindings.HTTP.Operations[0].Path != "/vehicles/{vin}" || got.Bindings.MQTT.Channels[0].Action != "publish" ||
		!got.Sunset.Equal(sunset) || got.Upstream.Targets[0] != "http://127.0.0.1:9000" {
		t.Fatalf("round trip: %+v", got)
	}
	got.State = model.StatePublished
	got.UpdatedAt = now()
	mustUpdate(t, s, func(tx store.Tx) error {
		if err := tx.UpdateVersion(got); err != nil {
			return err
		}
		return tx.AddTransition(&model.Transition{ID: "t1", TenantID: "a", VersionID: v.ID, From: model.StateDraft, To: model.StatePublished, Actor: "bob", Reason: "ok", At: now()})
	})
	var pub []model.Version
	var trs []model.Transition
	_ = s.View(ctx, func(tx store.Tx) (err error) {
		if pub, err = tx.ListVersionsByState("", model.StatePublished, model.StateDeprecated); err != nil {
			return err
		}
		trs, err = tx.ListTransitions("a", v.ID)
		return err
	})
	if len(pub) != 1 || pub[0].State != model.StatePublished {
		t.Fatalf("published versions: %+v", pub)
	}
	if len(trs) != 1 || trs[0].Actor != "bob" || trs[0].To != model.StatePublished {
		t.Fatalf("transitions: %+v", trs)
	}
}

func testTokens(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	exp := now().Add(time.Hour)
	mustUpdate(t, s, func(tx store.Tx) error {
		if err := tx.CreateOperator(&model.Operator{ID: "op", TenantID: "a", Name: "ops", Roles: []model.Role{model.RoleAuditor}, CreatedAt: now(), UpdatedAt: now()}); err != nil {
			return err
		}
		return tx.CreateToken(&model.Token{ID: "tk", TenantID: "a", OperatorID: "op", Name: "ci", Prefix: "fgt_ab", Hash: []byte{0xde, 0xad}, ExpiresAt: &exp, CreatedAt: now()})
	})
	var tok *model.Token
	if err := s.View(ctx, func(tx store.Tx) (err error) { tok, err = tx.GetTokenByHash([]byte{0xde, 0xad}); return }); err != nil {
		t.Fatal(err)
	}
	if tok.ID != "tk" || !tok.ExpiresAt.Equal(exp) || !tok.Active(now()) {
		t.Fatalf("token: %+v", tok)
	}
	rev := now()
	tok.RevokedAt = &rev
	mustUpdate(t, s, func(tx store.Tx) error { return tx.UpdateToken(tok) })
	_ = s.View(ctx, func(tx store.Tx) (err error) { tok, err = tx.GetTokenByHash([]byte{0xde, 0xad}); return })
	if tok.Active(now()) {
		t.Fatal("revoked token still active")
	}
	err := s.View(ctx, func(tx store.Tx) error { _, err := tx.GetTokenByHash([]byte{0xbe, 0xef}); return err })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
}

func testAuditConcurrent(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				errs <- s.Update(ctx, func(tx store.Tx) error {
					return tx.AppendAudit(&model.AuditRecord{TenantID: "a", Actor: fmt.Sprint("w", w), Action: "test", ObjectType: "x", ObjectID: fmt.Sprint(i)})
				})
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	v := audit.NewVerifier("a")
	var head int64
	var headHash string
	_ = s.View(ctx, func(tx store.Tx) error {
		after := int64(0)
		for {
			recs, err := tx.ListAudit("a", store.AuditFilter{AfterSeq: after, Limit: 7})
			if err != nil || len(recs) == 0 {
				break
			}
			for i := range recs {
				v.Next(&recs[i])
			}
			after = recs[len(recs)-1].Seq
		}
		var err error
		head, headHash, err = tx.AuditHead("a")
		return err
	})
	if b := v.Finish(head, headHash); b != nil {
		t.Fatalf("chain broken: %+v", b)
	}
	if v.Checked != writers*each || head != writers*each {
		t.Fatalf("checked %d records, head %d, want %d", v.Checked, head, writers*each)
	}
	var filtered []model.AuditRecord
	_ = s.View(ctx, func(tx store.Tx) (err error) {
		filtered, err = tx.ListAudit("a", store.AuditFilter{Actor: "w3", Limit: 100})
		return
	})
	if len(filtered) != each {
		t.Fatalf("actor filter: %d records, want %d", len(filtered), each)
	}
}

func testPagination(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	for i := 0; i < 7; i++ {
		seedAPI(t, s, "a", fmt.Sprintf("api-%02d", i))
	}
	var seen []string
	after := ""
	for pages := 0; pages < 10; pages++ {
		var page []model.API
		_ = s.View(ctx, func(tx store.Tx) (err error) {
			page, err = tx.ListAPIs("a", store.Page{Limit: 3, After: after})
			return
		})
		if len(page) == 0 {
			break
		}
		for _, a := range page {
			seen = append(seen, a.Name)
		}
		after = page[len(page)-1].Name
	}
	if len(seen) != 7 || seen[0] != "api-00" || seen[6] != "api-06" {
		t.Fatalf("pages: %v", seen)
	}
}

func testDeleteTenantKeepsAudit(t *testing.T, s store.Store) {
	seedTenant(t, s, "gone")
	seedAPI(t, s, "gone", "x")
	mustUpdate(t, s, func(tx store.Tx) error {
		return tx.AppendAudit(&model.AuditRecord{TenantID: "gone", Actor: "x", Action: "api.create", ObjectType: "api", ObjectID: "x"})
	})
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeleteTenant("gone") })
	var recs []model.AuditRecord
	_ = s.View(ctx, func(tx store.Tx) (err error) { recs, err = tx.ListAudit("gone", store.AuditFilter{}); return })
	if len(recs) != 1 {
		t.Fatalf("audit after tenant delete: %d records", len(recs))
	}
}

func testConsumers(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	seedTenant(t, s, "b")
	app := &model.Application{ID: "app1", TenantID: "a", Name: "fleet-ops", Attributes: map[string]string{"region": "eu"},
		CertFingerprints: []string{"ab12"}, CreatedAt: now(), UpdatedAt: now()}
	key := &model.APIKey{ID: "k1", TenantID: "a", AppID: "app1", Name: "prod", Prefix: "fgk_abc", Hash: []byte{9, 9}, CreatedAt: now()}
	mustUpdate(t, s, func(tx store.Tx) error {
		if err := tx.CreateApp(app); err != nil {
			return err
		}
		if err := tx.CreateAPIKey(key); err != nil {
			return err
		}
		for _, o := range []model.Ownership{
			{TenantID: "a", Subject: "user:alice", ObjectType: "vehicle", ObjectID: "VIN1", CreatedAt: now()},
			{TenantID: "a", Subject: "user:alice", ObjectType: "vehicle", ObjectID: "VIN2", CreatedAt: now()},
			{TenantID: "b", Subject: "user:alice", ObjectType: "vehicle", ObjectID: "VIN9", CreatedAt: now()},
		} {
			if err := tx.AddOwnership(&o); err != nil {
				return err
			}
		}
		return nil
	})
	err := s.Update(ctx, func(tx store.Tx) error {
		return tx.AddOwnership(&model.Ownership{TenantID: "a", Subject: "user:alice", ObjectType: "vehicle", ObjectID: "VIN1", CreatedAt: now()})
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate ownership: %v", err)
	}
	_ = s.View(ctx, func(tx store.Tx) error {
		got, err := tx.GetApp("a", "fleet-ops")
		if err != nil || got.Attributes["region"] != "eu" || got.CertFingerprints[0] != "ab12" {
			t.Errorf("app round trip: %+v %v", got, err)
		}
		if _, err := tx.GetApp("b", "fleet-ops"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("app across tenants: %v", err)
		}
		keys, err := tx.ListAPIKeys("", "", store.Page{Limit: -1})
		if err != nil || len(keys) != 1 || keys[0].AppName != "fleet-ops" || keys[0].Hash[0] != 9 {
			t.Errorf("all keys: %+v %v", keys, err)
		}
		if _, err := tx.GetAPIKey("b", "k1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("key across tenants: %v", err)
		}
		owned, err := tx.ListOwnerships("a", store.OwnershipFilter{Subject: "user:alice", Limit: 1})
		if err != nil || len(owned) != 1 || owned[0].ObjectID != "VIN1" {
			t.Errorf("ownership page 1: %+v %v", owned, err)
		}
		owned, _ = tx.ListOwnerships("a", store.OwnershipFilter{Subject: "user:alice", After: "user:alice|vehicle|VIN1"})
		if len(owned) != 1 || owned[0].ObjectID != "VIN2" {
			t.Errorf("ownership page 2: %+v", owned)
		}
		all, _ := tx.ListOwnerships("", store.OwnershipFilter{Limit: -1})
		if len(all) != 3 {
			t.Errorf("all ownerships: %d", len(all))
		}
		return nil
	})
	mustUpdate(t, s, func(tx store.Tx) error {
		return tx.RemoveOwnership(&model.Ownership{TenantID: "a", Subject: "user:alice", ObjectType: "vehicle", ObjectID: "VIN1"})
	})
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeleteApp("a", "app1") })
	_ = s.View(ctx, func(tx store.Tx) error {
		if keys, _ := tx.ListAPIKeys("a", "", store.Page{}); len(keys) != 0 {
			t.Errorf("keys survive their application: %d", len(keys))
		}
		return nil
	})
}
