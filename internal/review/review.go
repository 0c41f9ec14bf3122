// Package review is the review workflow of API versions: who may approve
// (never the author or a co-author; reviewers, optionally narrowed to the
// tenant's named approvers), how many approvals a tenant needs, review
// rounds (each submission starts one; earlier approvals do not count),
// the lifecycle check that holds publication until enough approvals exist,
// and the scheduler that publishes approved versions at their time.
//
// The admin API records the steps; this package decides. It never writes
// audit records itself except for the scheduler, which has no request to
// hang them on.
package review

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// SystemActor is the audit actor of scheduled publications.
const SystemActor = "system/review-scheduler"

// MaxApprovals bounds ApprovalsRequired: a higher count is a typo, and a
// count no team can reach would freeze every API of the tenant.
const MaxApprovals = 10

// Refusal kinds, used as stable problem types by the admin API.
const (
	KindSelfApproval = "self-approval"
	KindNotApprover  = "not-an-approver"
)

// Refusal says why an operator may not approve a version.
type Refusal struct {
	Kind   string
	Detail string
}

func (r *Refusal) Error() string { return r.Kind + ": " + r.Detail }

// Settings returns the tenant's review settings, or the defaults.
func Settings(tx store.Tx, tenant string) (model.ReviewSettings, error) {
	s, err := tx.GetReviewSettings(tenant)
	if errors.Is(err, store.ErrNotFound) {
		return model.DefaultReviewSettings(tenant), nil
	}
	if err != nil {
		return model.ReviewSettings{}, err
	}
	if s.Approvers == nil {
		s.Approvers = []string{}
	}
	return *s, nil
}

// Round is v's current review round: how many times it was submitted
// (moved to in_review). 0 means never.
func Round(tx store.Tx, v *model.Version) (int, error) {
	ts, err := tx.ListTransitions(v.TenantID, v.ID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range ts {
		if t.To == model.StateInReview {
			n++
		}
	}
	return n, nil
}

// IsCoAuthor reports whether actor wrote v: its author or a co-author.
func IsCoAuthor(actor string, v *model.Version, cos []model.CoAuthor) bool {
	return actor == v.Author || slices.ContainsFunc(cos, func(c model.CoAuthor) bool { return c.Actor == actor })
}

// listed reports whether actor is one of the tenant's named approvers
// (names are of operators of v's tenant: a system operator of another
// tenant is never listed).
func listed(actor, tenant string, set model.ReviewSettings) bool {
	return len(set.Approvers) == 0 || slices.ContainsFunc(set.Approvers, func(n string) bool { return tenant+"/"+n == actor })
}

// Eligible says whether op (recorded as actor) may approve v or request
// changes to it; nil means yes. Separation of duties comes first, so the
// author hears why rather than a generic refusal.
func Eligible(op *model.Operator, actor string, v *model.Version, cos []model.CoAuthor, set model.ReviewSettings) *Refusal {
	switch {
	case actor == v.Author:
		return &Refusal{KindSelfApproval, fmt.Sprintf("%s is the author of %s/%s; another reviewer must approve it", actor, v.APIName, v.Label)}
	case IsCoAuthor(actor, v, cos):
		return &Refusal{KindSelfApproval, fmt.Sprintf("%s is a co-author of %s/%s; another reviewer must approve it", actor, v.APIName, v.Label)}
	case !op.HasRole(model.RoleReviewer):
		return &Refusal{KindNotApprover, "approving needs the reviewer role"}
	case !listed(actor, v.TenantID, set):
		return &Refusal{KindNotApprover, fmt.Sprintf("%s is not among the tenant's approvers", actor)}
	}
	return nil
}

// Counted returns the approvals of round that count now: given in that
// round, by someone who is neither author nor co-author and, when the
// tenant names its approvers, is named. Rules are applied again at
// counting time so that a later co-authorship or settings change cannot
// be bypassed by an earlier approval.
func Counted(events []model.ReviewEvent, round int, v *model.Version, cos []model.CoAuthor, set model.ReviewSettings) []model.ReviewEvent {
	out := []model.ReviewEvent{}
	for _, e := range events {
		if e.Kind == model.ReviewApproval && e.Round == round && !IsCoAuthor(e.Actor, v, cos) && listed(e.Actor, v.TenantID, set) {
			out = append(out, e)
		}
	}
	return out
}

// PublishAt is when approvals ask the version to be published: the latest
// publish_at among them (no approver gets it earlier than asked), nil for
// at once.
func PublishAt(approvals []model.ReviewEvent) *time.Time {
	var at *time.Time
	for _, e := range approvals {
		if e.PublishAt != nil && (at == nil || e.PublishAt.After(*at)) {
			at = e.PublishAt
		}
	}
	return at
}

// State is everything the rules read about one version's review.
type State struct {
	Settings  model.ReviewSettings
	CoAuthors []model.CoAuthor
	Events    []model.ReviewEvent
	Round     int
}

// Load reads v's review state in tx.
func Load(tx store.Tx, v *model.Version) (*State, error) {
	var st State
	var err error
	if st.Settings, err = Settings(tx, v.TenantID); err != nil {
		return nil, err
	}
	if st.CoAuthors, err = tx.ListCoAuthors(v.TenantID, v.ID); err != nil {
		return nil, err
	}
	if st.Events, err = tx.ListReviewEvents(v.TenantID, v.ID); err != nil {
		return nil, err
	}
	if st.Round, err = Round(tx, v); err != nil {
		return nil, err
	}
	return &st, nil
}

// Approvals are the approvals of the current round that count.
func (st *State) Approvals(v *model.Version) []model.ReviewEvent {
	return Counted(st.Events, st.Round, v, st.CoAuthors, st.Settings)
}
