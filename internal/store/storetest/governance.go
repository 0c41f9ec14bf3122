package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

func testGovernanceSettings(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	seedTenant(t, s, "b")
	err := s.View(ctx, func(tx store.Tx) error { _, err := tx.GetGovernanceSettings("a"); return err })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("settings before any were saved: %v, want ErrNotFound", err)
	}
	in := &model.GovernanceSettings{TenantID: "a", LintLevels: map[string]string{"version-in-path": "off", "error-responses": "error"},
		VersionBudget: 3, APIBudgets: map[string]int{"vehicles": 5}, RetireWindow: 7 * 24 * time.Hour, UpdatedBy: "a/ann", UpdatedAt: now()}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.PutGovernanceSettings(in) })
	var got *model.GovernanceSettings
	_ = s.View(ctx, func(tx store.Tx) (err error) { got, err = tx.GetGovernanceSettings("a"); return })
	if got == nil || got.VersionBudget != 3 || got.APIBudgets["vehicles"] != 5 || got.LintLevels["version-in-path"] != "off" ||
		got.RetireWindow != 7*24*time.Hour || got.UpdatedBy != "a/ann" || !got.UpdatedAt.Equal(in.UpdatedAt) {
		t.Fatalf("round trip: %+v", got)
	}
	// A second put replaces everything, including maps emptied to nil.
	mustUpdate(t, s, func(tx store.Tx) error {
		return tx.PutGovernanceSettings(&model.GovernanceSettings{TenantID: "a", VersionBudget: 1, UpdatedAt: now()})
	})
	_ = s.View(ctx, func(tx store.Tx) (err error) { got, err = tx.GetGovernanceSettings("a"); return })
	if got.VersionBudget != 1 || len(got.APIBudgets) != 0 || len(got.LintLevels) != 0 || got.RetireWindow != 0 {
		t.Fatalf("replace: %+v", got)
	}
	if err := s.View(ctx, func(tx store.Tx) error { _, err := tx.GetGovernanceSettings("b"); return err }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("settings leak across tenants: %v", err)
	}
	// Settings belong to an existing tenant.
	if err := s.Update(ctx, func(tx store.Tx) error {
		return tx.PutGovernanceSettings(&model.GovernanceSettings{TenantID: "nope", UpdatedAt: now()})
	}); err == nil {
		t.Fatal("settings of a missing tenant were accepted")
	}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeleteTenant("a") })
}

func testVersionUsage(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	seedTenant(t, s, "b")
	t0 := now().Add(-time.Hour)
	t1 := t0.Add(30 * time.Minute)
	rows := []model.VersionUsage{
		{TenantID: "a", VersionID: "v1", Consumer: "app:billing", Count: 3, LastSeen: t0},
		{TenantID: "a", VersionID: "v1", Consumer: "device:m-1", Model: "em-300", Firmware: "1.2.0", Count: 10, LastSeen: t0},
		// The same key twice in one batch is merged, not refused.
		{TenantID: "a", VersionID: "v1", Consumer: "app:billing", Count: 2, LastSeen: t1},
		{TenantID: "a", VersionID: "v2", Consumer: "app:billing", Count: 1, LastSeen: t1},
		{TenantID: "b", VersionID: "v1", Consumer: "app:other", Count: 7, LastSeen: t1},
		{TenantID: "a", VersionID: "v1", Consumer: "app:zero", Count: 0, LastSeen: t1}, // nothing to add
	}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.AddVersionUsage(rows) })
	// Deltas add up; an older LastSeen never moves the stored one back.
	mustUpdate(t, s, func(tx store.Tx) error {
		return tx.AddVersionUsage([]model.VersionUsage{{TenantID: "a", VersionID: "v1", Consumer: "app:billing", Count: 4, LastSeen: t0}})
	})
	var got []model.VersionUsage
	_ = s.View(ctx, func(tx store.Tx) (err error) {
		got, err = tx.ListVersionUsage("a", store.UsageFilter{VersionID: "v1"})
		return
	})
	want := "device:m-1 em-300 1.2.0 10 " + t0.String() + "|app:billing   9 " + t1.String() + "|"
	if s := usageString(got); s != want {
		t.Fatalf("usage of v1:\n got %s\nwant %s", s, want)
	}
	cases := []struct {
		name string
		f    store.UsageFilter
		n    int
	}{
		{"all versions", store.UsageFilter{}, 3},
		{"since excludes older", store.UsageFilter{Since: t1}, 2},
		{"since is inclusive", store.UsageFilter{Since: t0}, 3},
		{"limit", store.UsageFilter{Limit: 1}, 1},
		{"no limit", store.UsageFilter{Limit: -1}, 3},
		{"unknown version", store.UsageFilter{VersionID: "v9"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []model.VersionUsage
			err := s.View(ctx, func(tx store.Tx) (err error) { got, err = tx.ListVersionUsage("a", tc.f); return })
			if err != nil || len(got) != tc.n {
				t.Fatalf("%d rows (%v), want %d: %s", len(got), err, tc.n, usageString(got))
			}
		})
	}
	// A large batch goes through in chunks.
	big := make([]model.VersionUsage, 1000)
	for i := range big {
		big[i] = model.VersionUsage{TenantID: "b", VersionID: "v-big", Consumer: fmt.Sprintf("app:%04d", i), Count: 1, LastSeen: t1}
	}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.AddVersionUsage(big) })
	_ = s.View(ctx, func(tx store.Tx) (err error) {
		got, err = tx.ListVersionUsage("b", store.UsageFilter{VersionID: "v-big", Limit: -1})
		return
	})
	if len(got) != 1000 {
		t.Fatalf("big batch: %d rows", len(got))
	}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeleteTenant("b") })
	_ = s.View(ctx, func(tx store.Tx) (err error) {
		got, err = tx.ListVersionUsage("b", store.UsageFilter{Limit: -1})
		return
	})
	if len(got) != 0 {
		t.Fatalf("usage kept after the tenant was deleted: %d", len(got))
	}
}

func usageString(us []model.VersionUsage) string {
	out := ""
	for _, u := range us {
		out += fmt.Sprintf("%s %s %s %d %s|", u.Consumer, u.Model, u.Firmware, u.Count, u.LastSeen)
	}
	return out
}
