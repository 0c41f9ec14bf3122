// Package lifecycle owns the state machine of API versions: which
// transitions exist, who may make them, and the hook point where governance
// checks (review rules, lint, budgets, retirement conditions) plug in.
package lifecycle

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// transitions is the whole state machine: draft -> in_review -> published ->
// deprecated -> retired, published <-> blocked, in_review -> draft.
var transitions = map[model.State][]model.State{
	model.StateDraft:      {model.StateInReview},
	model.StateInReview:   {model.StatePublished, model.StateDraft},
	model.StatePublished:  {model.StateDeprecated, model.StateBlocked},
	model.StateBlocked:    {model.StatePublished},
	model.StateDeprecated: {model.StateRetired},
	model.StateRetired:    {},
}

// ValidState reports whether s is a lifecycle state.
func ValidState(s model.State) bool {
	_, ok := transitions[s]
	return ok
}

// Allowed returns the states reachable from s in one step.
func Allowed(s model.State) []model.State { return slices.Clone(transitions[s]) }

// roles says which role may make each transition (admin may make any).
var roles = map[[2]model.State]model.Role{
	{model.StateDraft, model.StateInReview}:       model.RoleAuthor,
	{model.StateInReview, model.StateDraft}:       model.RoleReviewer,
	{model.StateInReview, model.StatePublished}:   model.RoleReviewer,
	{model.StatePublished, model.StateDeprecated}: model.RoleOperator,
	{model.StatePublished, model.StateBlocked}:    model.RoleOperator,
	{model.StateBlocked, model.StatePublished}:    model.RoleOperator,
	{model.StateDeprecated, model.StateRetired}:   model.RoleOperator,
}

// RoleFor returns the role needed for the transition from -> to.
func RoleFor(from, to model.State) model.Role { return roles[[2]model.State{from, to}] }

// IllegalError is a transition the state machine does not have.
type IllegalError struct {
	From, To model.State
	Allowed  []model.State
}

func (e *IllegalError) Error() string {
	a := make([]string, len(e.Allowed))
	for i, s := range e.Allowed {
		a[i] = string(s)
	}
	allowed := strings.Join(a, ", ")
	if allowed == "" {
		allowed = "none: " + string(e.From) + " is final"
	}
	return fmt.Sprintf("cannot move from %s to %s; allowed: %s", e.From, e.To, allowed)
}

// CheckError is a transition refused by a governance check.
type CheckError struct {
	Check  string // stable name of the check, e.g. "separation-of-duties"
	Detail string
	// Field is a JSON pointer into the transition request, when one field
	// is at fault (e.g. "/reason").
	Field string
	// Data carries the details (lint findings, breaking changes, callers)
	// for the answer.
	Data any
}

func (e *CheckError) Error() string { return e.Check + ": " + e.Detail }

// Request is a transition being attempted.
type Request struct {
	Version   *model.Version // current state; not yet modified
	To        model.State
	Actor     *model.Operator
	ActorName string // "tenant/name", as recorded in the audit log
	Reason    string
	Sunset    *time.Time
	Successor string
	// Force overrides refusals that allow it (retiring a version still in
	// use); it needs a reason and is audited.
	Force bool
	Now   time.Time
	// Warnings collects what checks report without refusing (near-
	// duplicate operations); the caller shows them with the answer.
	Warnings []Warning
}

// Warning is a finding that does not refuse a transition but that
// reviewers should see.
type Warning struct {
	Check  string `json:"check"`
	Detail string `json:"detail"`
	Data   any    `json:"data,omitempty"`
}

// Check is a governance hook, run inside the transition's transaction so it
// can read related objects consistently. A non-nil error refuses the
// transition; return a *CheckError for a precise answer.
type Check func(tx store.Tx, r *Request) error

// Machine applies transitions, running its checks first.
type Machine struct {
	checks []Check
}

// New returns a machine with the built-in checks followed by extra ones.
// The governance issue adds lint, budget and retirement checks here.
func New(extra ...Check) *Machine {
	return &Machine{checks: append([]Check{separationOfDuties, deprecationNeedsSunset}, extra...)}
}

// ErrForbidden is returned when the actor lacks the role for a transition.
var ErrForbidden = errors.New("forbidden")

// Transition validates r and applies it within tx: it updates the version
// and records the transition. The caller writes the audit record in the
// same transaction.
func (m *Machine) Transition(tx store.Tx, r *Request, id string) (*model.Transition, error) {
	from := r.Version.State
	if !slices.Contains(transitions[from], r.To) {
		return nil, &IllegalError{From: from, To: r.To, Allowed: Allowed(from)}
	}
	if need := RoleFor(from, r.To); !r.Actor.HasRole(need) {
		return nil, fmt.Errorf("%w: moving a version from %s to %s needs the %s role", ErrForbidden, from, r.To, need)
	}
	for _, c := range m.checks {
		if err := c(tx, r); err != nil {
			return nil, err
		}
	}
	v := r.Version
	v.State = r.To
	v.UpdatedAt = r.Now
	if r.To == model.StateDeprecated {
		v.Sunset, v.Successor = r.Sunset, r.Successor
	}
	if err := tx.UpdateVersion(v); err != nil {
		return nil, err
	}
	t := &model.Transition{ID: id, TenantID: v.TenantID, VersionID: v.ID, From: from, To: r.To, Actor: r.ActorName, Reason: r.Reason, At: r.Now}
	if err := tx.AddTransition(t); err != nil {
		return nil, err
	}
	return t, nil
}

// separationOfDuties: the author of a version may not approve it.
func separationOfDuties(_ store.Tx, r *Request) error {
	if r.Version.State == model.StateInReview && r.To == model.StatePublished && r.Version.Author == r.ActorName {
		return &CheckError{Check: "separation-of-duties", Detail: "the author of a version cannot approve it; another reviewer must publish it"}
	}
	return nil
}

// deprecationNeedsSunset: a deprecated version must say when it goes away,
// so the data plane can announce it (Sunset header, MQTT user property).
func deprecationNeedsSunset(_ store.Tx, r *Request) error {
	if r.To != model.StateDeprecated {
		return nil
	}
	if r.Sunset == nil {
		return &CheckError{Check: "sunset-required", Detail: "deprecating a version requires a sunset date", Field: "/sunset"}
	}
	if r.Successor == "" {
		return &CheckError{Check: "successor-required", Detail: "deprecating a version requires naming its successor", Field: "/successor"}
	}
	if !r.Sunset.After(r.Now) {
		return &CheckError{Check: "sunset-required", Detail: "the sunset date must be in the future", Field: "/sunset"}
	}
	return nil
}
