package review

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/lifecycle"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
	"github.com/fleetgate/fleetgate/internal/store/sqlite"
)

// benchVersion seeds a SQLite store with a version in its second review
// round: 3 transitions, 2 co-authors, 40 comments and 4 approvals.
func benchVersion(b *testing.B) (store.Store, *model.Version) {
	b.Helper()
	st, err := sqlite.Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	now := time.Now().UTC().Truncate(time.Microsecond)
	v := &model.Version{ID: "v1", TenantID: "acme", APIID: "api", APIName: "meters", Label: "v1", State: model.StateInReview, Author: "acme/ann", CreatedAt: now, UpdatedAt: now}
	err = st.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.CreateTenant(&model.Tenant{ID: "acme", CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		if err := tx.CreateAPI(&model.API{ID: "api", TenantID: "acme", Name: "meters", Owner: "o", CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		if err := tx.CreateVersion(v); err != nil {
			return err
		}
		for i, to := range []model.State{model.StateInReview, model.StateDraft, model.StateInReview} {
			if err := tx.AddTransition(&model.Transition{ID: fmt.Sprint("t", i), TenantID: "acme", VersionID: "v1", To: to, Actor: "acme/ann", At: now}); err != nil {
				return err
			}
		}
		for _, c := range []string{"acme/carl", "acme/dora"} {
			if err := tx.AddCoAuthor(&model.CoAuthor{TenantID: "acme", VersionID: "v1", Actor: c, Source: model.CoAuthorEdit, AddedBy: c, AddedAt: now}); err != nil {
				return err
			}
		}
		for i := 0; i < 44; i++ {
			e := &model.ReviewEvent{ID: fmt.Sprint("e", i), TenantID: "acme", VersionID: "v1", Round: 1 + i%2, Kind: model.ReviewComment, Actor: "acme/rita", Comment: "a comment", At: now}
			if i < 4 {
				e.Kind, e.Actor = model.ReviewApproval, fmt.Sprint("acme/r", i)
			}
			if err := tx.AddReviewEvent(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return st, v
}

// BenchmarkCheck is the approvals check a publication runs; compare it
// with BenchmarkCheckBaseline (the transition list every check of this
// kind reads anyway) in the same run.
func BenchmarkCheck(b *testing.B) {
	st, v := benchVersion(b)
	op := &model.Operator{Name: "rob", Roles: []model.Role{model.RoleReviewer}}
	b.ReportAllocs()
	for b.Loop() {
		err := st.View(context.Background(), func(tx store.Tx) error {
			return Check(tx, &lifecycle.Request{Version: v, To: model.StatePublished, Actor: op, ActorName: "acme/rob"})
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckBaseline(b *testing.B) {
	st, v := benchVersion(b)
	b.ReportAllocs()
	for b.Loop() {
		err := st.View(context.Background(), func(tx store.Tx) error {
			_, err := tx.ListTransitions(v.TenantID, v.ID)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePointer(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePointer("/paths/~1vehicles~1{vin}~1battery/get/responses/200"); err != nil {
			b.Fatal(err)
		}
	}
}
