package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

func seedVersion(t *testing.T, s store.Store, api *model.API, id, label string) *model.Version {
	t.Helper()
	v := &model.Version{ID: id, TenantID: api.TenantID, APIID: api.ID, Label: label, State: model.StateInReview, Author: api.TenantID + "/ann",
		CreatedAt: now(), UpdatedAt: now()}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.CreateVersion(v) })
	return v
}

// testReviewSettings: absent settings are ErrNotFound, a put is an upsert,
// and another tenant never sees them.
func testReviewSettings(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	seedTenant(t, s, "b")
	err := s.View(ctx, func(tx store.Tx) error { _, err := tx.GetReviewSettings("a"); return err })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unset settings: %v, want ErrNotFound", err)
	}
	set := &model.ReviewSettings{TenantID: "a", ApprovalsRequired: 2, Approvers: []string{"rita", "rob"}, UpdatedBy: "a/root", UpdatedAt: now()}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.PutReviewSettings(set) })
	set2 := &model.ReviewSettings{TenantID: "a", ApprovalsRequired: 3, UpdatedBy: "a/boss", UpdatedAt: now().Add(time.Second)}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.PutReviewSettings(set2) })
	_ = s.View(ctx, func(tx store.Tx) error {
		got, err := tx.GetReviewSettings("a")
		if err != nil || got.ApprovalsRequired != 3 || got.Approvers == nil || len(got.Approvers) != 0 || got.UpdatedBy != "a/boss" || !got.UpdatedAt.Equal(set2.UpdatedAt) {
			t.Errorf("after upsert: %+v %v", got, err)
		}
		if _, err := tx.GetReviewSettings("b"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("settings leak to tenant b: %v", err)
		}
		return nil
	})
	mustUpdate(t, s, func(tx store.Tx) error { return tx.PutReviewSettings(set) })
	_ = s.View(ctx, func(tx store.Tx) error {
		got, err := tx.GetReviewSettings("a")
		if err != nil || len(got.Approvers) != 2 || got.Approvers[1] != "rob" {
			t.Errorf("approvers round trip: %+v %v", got, err)
		}
		return nil
	})
}

// testReviewEvents: co-authors, events with anchors, one approval per
// actor and round (also under concurrency), isolation, and cleanup when
// the version or the tenant goes.
func testReviewEvents(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	seedTenant(t, s, "b")
	api := seedAPI(t, s, "a", "vehicles")
	v := seedVersion(t, s, api, "v-1", "v1")
	co := &model.CoAuthor{TenantID: "a", VersionID: v.ID, Actor: "a/carl", Source: model.CoAuthorEdit, AddedBy: "a/carl", AddedAt: now()}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.AddCoAuthor(co) })
	if err := s.Update(ctx, func(tx store.Tx) error { c := *co; return tx.AddCoAuthor(&c) }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("co-author twice: %v, want ErrConflict", err)
	}
	pub := now().Add(time.Hour)
	events := []model.ReviewEvent{
		{ID: "e1", TenantID: "a", VersionID: v.ID, Round: 1, Kind: model.ReviewComment, Actor: "a/rita", Comment: "why?", Operation: "getBattery", Pointer: "/paths/~1vehicles", At: now()},
		{ID: "e2", TenantID: "a", VersionID: v.ID, Round: 1, Kind: model.ReviewApproval, Actor: "a/rita", PublishAt: &pub, At: now().Add(time.Millisecond)},
		// The same reviewer approves again in the next round: allowed.
		{ID: "e3", TenantID: "a", VersionID: v.ID, Round: 2, Kind: model.ReviewApproval, Actor: "a/rita", At: now().Add(2 * time.Millisecond)},
	}
	mustUpdate(t, s, func(tx store.Tx) error {
		for i := range events {
			if err := tx.AddReviewEvent(&events[i]); err != nil {
				return err
			}
		}
		return nil
	})
	dup := model.ReviewEvent{ID: "e4", TenantID: "a", VersionID: v.ID, Round: 2, Kind: model.ReviewApproval, Actor: "a/rita", At: now().Add(time.Second)}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.AddReviewEvent(&dup) }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second approval in a round: %v, want ErrConflict", err)
	}
	// Two comments by one actor in one round are fine.
	dup.Kind, dup.Comment = model.ReviewComment, "again"
	mustUpdate(t, s, func(tx store.Tx) error { return tx.AddReviewEvent(&dup) })

	// Concurrent approvals by the same actor: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = s.Update(ctx, func(tx store.Tx) error {
				if err := tx.LockVersion("a", v.ID); err != nil {
					return err
				}
				return tx.AddReviewEvent(&model.ReviewEvent{ID: "c" + string(rune('0'+i)), TenantID: "a", VersionID: v.ID, Round: 3,
					Kind: model.ReviewApproval, Actor: "a/rob", At: now().Add(time.Minute)})
			})
		}(i)
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("concurrent approval: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent approvals by one actor succeeded, want 1", won)
	}

	_ = s.View(ctx, func(tx store.Tx) error {
		cs, err := tx.ListCoAuthors("a", v.ID)
		if err != nil || len(cs) != 1 || cs[0].Actor != "a/carl" || cs[0].Source != model.CoAuthorEdit || !cs[0].AddedAt.Equal(co.AddedAt) {
			t.Errorf("co-authors: %+v %v", cs, err)
		}
		es, err := tx.ListReviewEvents("a", v.ID)
		if err != nil || len(es) != 5 {
			t.Fatalf("events: %d %v", len(es), err)
		}
		if e := es[0]; e.ID != "e1" || e.Kind != model.ReviewComment || e.Operation != "getBattery" || e.Pointer != "/paths/~1vehicles" || e.PublishAt != nil {
			t.Errorf("comment round trip: %+v", e)
		}
		if e := es[1]; e.ID != "e2" || e.Round != 1 || e.PublishAt == nil || !e.PublishAt.Equal(pub) {
			t.Errorf("approval round trip: %+v", e)
		}
		if es, _ := tx.ListReviewEvents("b", v.ID); len(es) != 0 {
			t.Errorf("events leak to tenant b: %+v", es)
		}
		if cs, _ := tx.ListCoAuthors("b", v.ID); len(cs) != 0 {
			t.Errorf("co-authors leak to tenant b: %+v", cs)
		}
		return nil
	})
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.LockVersion("b", v.ID) }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("lock across tenants: %v, want ErrNotFound", err)
	}

	// Deleting the version removes its review rows; deleting the tenant
	// removes the rest.
	mustUpdate(t, s, func(tx store.Tx) error {
		return tx.PutReviewSchedule(&model.ReviewSchedule{TenantID: "a", VersionID: v.ID, APIID: api.ID, Label: v.Label, Round: 3, PublishAt: pub, ScheduledBy: "a/rob", CreatedAt: now()})
	})
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeleteVersion("a", v.ID) })
	_ = s.View(ctx, func(tx store.Tx) error {
		es, _ := tx.ListReviewEvents("a", v.ID)
		cs, _ := tx.ListCoAuthors("a", v.ID)
		_, err := tx.GetReviewSchedule("a", v.ID)
		if len(es) != 0 || len(cs) != 0 || !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rows survive their version: %d events, %d co-authors, schedule %v", len(es), len(cs), err)
		}
		return nil
	})
	v2 := seedVersion(t, s, api, "v-2", "v2")
	mustUpdate(t, s, func(tx store.Tx) error {
		if err := tx.AddCoAuthor(&model.CoAuthor{TenantID: "a", VersionID: v2.ID, Actor: "a/x", Source: model.CoAuthorDeclared, AddedBy: "a/ann", AddedAt: now()}); err != nil {
			return err
		}
		if err := tx.AddReviewEvent(&model.ReviewEvent{ID: "z", TenantID: "a", VersionID: v2.ID, Kind: model.ReviewComment, Actor: "a/x", At: now()}); err != nil {
			return err
		}
		if err := tx.PutReviewSettings(&model.ReviewSettings{TenantID: "a", ApprovalsRequired: 1, UpdatedBy: "x", UpdatedAt: now()}); err != nil {
			return err
		}
		return tx.DeleteTenant("a")
	})
}

// testReviewSchedules: upsert per version, due lists across tenants in
// time order, bounded, and delete.
func testReviewSchedules(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	seedTenant(t, s, "b")
	apiA, apiB := seedAPI(t, s, "a", "vehicles"), seedAPI(t, s, "b", "meters")
	va, vb, vc := seedVersion(t, s, apiA, "va", "v1"), seedVersion(t, s, apiB, "vb", "v1"), seedVersion(t, s, apiA, "vc", "v2")
	base := now()
	put := func(v *model.Version, at time.Time, round int) {
		mustUpdate(t, s, func(tx store.Tx) error {
			return tx.PutReviewSchedule(&model.ReviewSchedule{TenantID: v.TenantID, VersionID: v.ID, APIID: v.APIID, Label: v.Label, Round: round,
				PublishAt: at, ScheduledBy: v.TenantID + "/rita", CreatedAt: base})
		})
	}
	put(va, base.Add(3*time.Hour), 1)
	put(va, base.Add(2*time.Minute), 2) // replaces the first
	put(vb, base.Add(time.Minute), 1)
	put(vc, base.Add(time.Hour), 1)
	due := func(at time.Time, n int) []string {
		var ids []string
		_ = s.View(ctx, func(tx store.Tx) error {
			ss, err := tx.ListDueReviewSchedules(at, n)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range ss {
				ids = append(ids, x.VersionID)
			}
			return nil
		})
		return ids
	}
	tests := []struct {
		name string
		at   time.Time
		n    int
		want []string
	}{
		{"nothing due yet", base, 10, nil},
		{"due exactly at publish_at", base.Add(time.Minute), 10, []string{"vb"}},
		{"earliest first across tenants", base.Add(30 * time.Minute), 10, []string{"vb", "va"}},
		{"bounded", base.Add(2 * time.Hour), 2, []string{"vb", "va"}},
		{"all", base.Add(4 * time.Hour), 10, []string{"vb", "va", "vc"}},
	}
	for _, tc := range tests {
		if got := due(tc.at, tc.n); len(got) != len(tc.want) || (len(got) > 0 && got[len(got)-1] != tc.want[len(tc.want)-1]) || (len(got) > 0 && got[0] != tc.want[0]) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	_ = s.View(ctx, func(tx store.Tx) error {
		sc, err := tx.GetReviewSchedule("a", "va")
		if err != nil || sc.Round != 2 || !sc.PublishAt.Equal(base.Add(2*time.Minute)) || sc.Label != "v1" || sc.APIID != apiA.ID || sc.ScheduledBy != "a/rita" {
			t.Errorf("schedule round trip: %+v %v", sc, err)
		}
		if _, err := tx.GetReviewSchedule("b", "va"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("schedule across tenants: %v", err)
		}
		return nil
	})
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.DeleteReviewSchedule("b", "va") }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete across tenants: %v", err)
	}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeleteReviewSchedule("a", "va") })
	if got := due(base.Add(4*time.Hour), 10); len(got) != 2 {
		t.Fatalf("after delete: %v", got)
	}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeleteAPI("a", apiA.ID) })
	if got := due(base.Add(4*time.Hour), 10); len(got) != 1 || got[0] != "vb" {
		t.Fatalf("after deleting the API: %v", got)
	}
}

// testLockVersion: a transaction that locks a version waits for another
// that holds the lock, and then sees what that one committed. This is what
// makes two concurrent last approvals count each other.
func testLockVersion(t *testing.T, s store.Store) {
	seedTenant(t, s, "a")
	v := seedVersion(t, s, seedAPI(t, s, "a", "vehicles"), "v-1", "v1")
	locked, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	first := make(chan error, 1)
	firstDone := false
	defer func() { // a failing test must not leave the first transaction open
		free()
		if !firstDone {
			<-first
		}
	}()
	go func() {
		first <- s.Update(ctx, func(tx store.Tx) error {
			if err := tx.LockVersion("a", v.ID); err != nil {
				close(locked)
				return err
			}
			close(locked)
			<-release
			return tx.AddReviewEvent(&model.ReviewEvent{ID: "first", TenantID: "a", VersionID: v.ID, Round: 1, Kind: model.ReviewApproval, Actor: "a/rita", At: now()})
		})
	}()
	<-locked
	second := make(chan int, 1)
	go func() {
		seen := -1
		err := s.Update(ctx, func(tx store.Tx) error {
			if err := tx.LockVersion("a", v.ID); err != nil {
				return err
			}
			es, err := tx.ListReviewEvents("a", v.ID)
			seen = len(es)
			return err
		})
		if err != nil {
			t.Errorf("second transaction: %v", err)
		}
		second <- seen
	}()
	select {
	case n := <-second:
		t.Fatalf("the second transaction did not wait for the lock (saw %d events)", n)
	case <-time.After(300 * time.Millisecond):
	}
	free()
	firstDone = true
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-second:
		if n != 1 {
			t.Fatalf("after the lock was released the second transaction saw %d events, want 1", n)
		}
	case <-time.After(20 * time.Second): // hang guard
		t.Fatal("the second transaction never got the lock")
	}
}
