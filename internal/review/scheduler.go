package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/lifecycle"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// schedulerOperator is the identity the scheduler transitions with: it
// holds only the reviewer role the in_review -> published move needs, and
// Check never counts it as an approval.
var schedulerOperator = model.Operator{Name: "review-scheduler", Roles: []model.Role{model.RoleReviewer}, System: true}

// ScheduledPublisher publishes approved versions whose publish_at has
// come. The composition root calls Run periodically; tests call it with
// the time they want.
type ScheduledPublisher struct {
	Store   store.Store
	Machine *lifecycle.Machine
	Log     *slog.Logger
	// OnChange is called after a run that changed something (the data
	// plane rebuilds its snapshot). It must not block.
	OnChange func()
	// Batch bounds the schedules handled by one Run (default 100); the
	// rest wait for the next tick.
	Batch int
}

// Outcome is what Run did with one due schedule.
type Outcome struct {
	Tenant, API, Version string
	// Result is "published", "refused" (a governance check said no; the
	// schedule is dropped and the refusal audited) or "stale" (the
	// version left review or was resubmitted since it was approved).
	Result string
	Detail string
}

// Run publishes the versions due at now, each in its own transaction with
// its audit record, so that one failure does not hold back the others. It
// returns what it did; the error joins the failures of individual
// schedules, which stay in place and are retried by the next Run.
func (p *ScheduledPublisher) Run(ctx context.Context, now time.Time) ([]Outcome, error) {
	n := p.Batch
	if n <= 0 {
		n = 100
	}
	var due []model.ReviewSchedule
	if err := p.Store.View(ctx, func(tx store.Tx) (err error) { due, err = tx.ListDueReviewSchedules(now, n); return }); err != nil {
		return nil, err
	}
	var out []Outcome
	var errs []error
	for i := range due {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		o, err := p.one(ctx, &due[i], now)
		if err != nil {
			errs = append(errs, fmt.Errorf("scheduled publication of %s: %w", due[i].VersionID, err))
			if p.Log != nil {
				p.Log.Error("scheduled publication failed; retried at the next tick", "tenant", due[i].TenantID, "version_id", due[i].VersionID, "err", err)
			}
			continue
		}
		if o != nil {
			out = append(out, *o)
		}
	}
	if len(out) > 0 && p.OnChange != nil {
		p.OnChange()
	}
	return out, errors.Join(errs...)
}

// one handles a schedule; nil Outcome when another node got there first.
func (p *ScheduledPublisher) one(ctx context.Context, sc *model.ReviewSchedule, now time.Time) (*Outcome, error) {
	var o *Outcome
	err := p.Store.Update(ctx, func(tx store.Tx) error {
		o = nil
		if err := tx.LockVersion(sc.TenantID, sc.VersionID); err != nil {
			return err
		}
		cur, err := tx.GetReviewSchedule(sc.TenantID, sc.VersionID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && cur.PublishAt.After(now)) {
			return nil // handled or rescheduled meanwhile
		} else if err != nil {
			return err
		}
		v, err := tx.GetVersion(cur.TenantID, cur.APIID, cur.Label)
		if err != nil {
			return err
		}
		round, err := Round(tx, v)
		if err != nil {
			return err
		}
		if err := tx.DeleteReviewSchedule(cur.TenantID, cur.VersionID); err != nil {
			return err
		}
		o = &Outcome{Tenant: v.TenantID, API: v.APIName, Version: v.Label}
		rec := &model.AuditRecord{TenantID: v.TenantID, Actor: SystemActor, ObjectType: "version", ObjectID: v.APIName + "/" + v.Label, BeforeDigest: audit.Digest(v)}
		if v.State != model.StateInReview || round != cur.Round {
			o.Result, o.Detail = "stale", fmt.Sprintf("approved in round %d; the version is now %s in round %d", cur.Round, v.State, round)
			rec.Action = "review.schedule.drop"
			rec.Detail = detail(map[string]any{"reason": o.Detail, "publish_at": cur.PublishAt})
			return tx.AppendAudit(rec)
		}
		from := v.State
		_, err = p.Machine.Transition(tx, &lifecycle.Request{Version: v, To: model.StatePublished, Actor: &schedulerOperator, ActorName: SystemActor,
			Reason: fmt.Sprintf("scheduled publication approved in review round %d (scheduled by %s)", round, cur.ScheduledBy), Now: now}, uuid.Must(uuid.NewV7()).String())
		var chk *lifecycle.CheckError
		switch {
		case errors.As(err, &chk):
			o.Result, o.Detail = "refused", chk.Error()
			rec.Action = "review.publish.refused"
			rec.Detail = detail(map[string]any{"check": chk.Check, "detail": chk.Detail, "publish_at": cur.PublishAt, "round": round})
		case err != nil:
			return err
		default:
			o.Result = "published"
			rec.Action, rec.AfterDigest = "version.transition", audit.Digest(v)
			rec.Detail = detail(map[string]any{"from": from, "to": model.StatePublished, "reason": "scheduled publication", "publish_at": cur.PublishAt, "round": round})
		}
		return tx.AppendAudit(rec)
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// detail encodes an audit detail; its values are plain data that always
// encode.
func detail(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
