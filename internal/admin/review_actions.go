package admin

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/lifecycle"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/review"
	"github.com/fleetgate/fleetgate/internal/spec"
	"github.com/fleetgate/fleetgate/internal/store"
)

// maxComment bounds a review comment; reviews link to documents for more.
const maxComment = 4000

// commentBody is a comment with its optional anchor: an operationId of the
// version and/or an RFC 6901 pointer into its spec document.
type commentBody struct {
	Comment   string `json:"comment"`
	Operation string `json:"operation"`
	Pointer   string `json:"pointer"`
}

func (b *commentBody) validate(required bool) []FieldError {
	var errs []FieldError
	if required && strings.TrimSpace(b.Comment) == "" {
		errs = append(errs, FieldError{Pointer: "/comment", Detail: "a comment is required"})
	}
	errs = append(errs, collectErrs(maxLen("/comment", b.Comment, maxComment), maxLen("/operation", b.Operation, 200))...)
	if _, err := review.ParsePointer(b.Pointer); err != nil {
		errs = append(errs, FieldError{Pointer: "/pointer", Detail: "not a JSON pointer: " + err.Error()})
	}
	return errs
}

// anchorErrs checks that the anchor names something the version has, so
// that a comment never points at nothing.
func anchorErrs(v *model.Version, b *commentBody) []FieldError {
	var errs []FieldError
	if b.Operation != "" && !review.HasOperation(v, b.Operation) {
		errs = append(errs, FieldError{Pointer: "/operation", Detail: "version " + v.Label + " has no operation " + b.Operation})
	}
	if b.Pointer == "" {
		return errs
	}
	if v.Spec == nil {
		return append(errs, FieldError{Pointer: "/pointer", Detail: "version " + v.Label + " has no spec document to point into"})
	}
	doc, err := spec.Parse([]byte(v.Spec.Content))
	toks, _ := review.ParsePointer(b.Pointer)
	if err != nil {
		return append(errs, FieldError{Pointer: "/pointer", Detail: "the version's spec document does not parse: " + err.Error()})
	}
	if _, _, ok := review.Locate(doc, toks); !ok {
		errs = append(errs, FieldError{Pointer: "/pointer", Detail: "nothing at " + b.Pointer + " in the spec document"})
	}
	return errs
}

func (s *Server) commentReview(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(model.RoleAuthor, model.RoleReviewer); err != nil {
		return err
	}
	var b commentBody
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	if errs := b.validate(true); errs != nil {
		return invalid("invalid comment", errs...)
	}
	var ev *model.ReviewEvent
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		_, v, err := loadVersion(tx, p, r)
		if err != nil {
			return err
		}
		if errs := anchorErrs(v, &b); errs != nil {
			return invalid("invalid comment anchor", errs...)
		}
		round, err := review.Round(tx, v)
		if err != nil {
			return err
		}
		ev = &model.ReviewEvent{ID: newID(), TenantID: p.tenant, VersionID: v.ID, Round: round, Kind: model.ReviewComment, Actor: p.actor,
			Comment: b.Comment, Operation: b.Operation, Pointer: b.Pointer, At: now()}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "review.comment", "version", v.APIName+"/"+v.Label, audit.Digest(ev)
		rec.Detail = jsonDetail(map[string]any{"event": ev.ID, "round": round, "operation": b.Operation, "pointer": b.Pointer})
		return tx.AddReviewEvent(ev)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, ev)
}

// publishRefusal is why an approval that completed the count did not
// publish: the governance check that refused, as a transition would
// report it.
type publishRefusal struct {
	Type   string `json:"type"`
	Check  string `json:"check"`
	Detail string `json:"detail"`
	Data   any    `json:"data,omitempty"`
}

// approveAnswer says what the approval did.
type approveAnswer struct {
	Approval          *model.ReviewEvent    `json:"approval"`
	Round             int                   `json:"round"`
	Approvals         int                   `json:"approvals"`
	ApprovalsRequired int                   `json:"approvals_required"`
	Published         bool                  `json:"published"`
	Scheduled         *model.ReviewSchedule `json:"scheduled,omitempty"`
	PublishRefused    *publishRefusal       `json:"publish_refused,omitempty"`
	Version           *model.Version        `json:"version"`
}

// approveReview records an approval of the current round. The approval
// that reaches the tenant's count publishes the version at once, through
// the same lifecycle transition and checks as any publication, or
// schedules it when an approval asked for a later time. A governance
// refusal does not undo the approval: it is recorded, and the answer
// carries the refusal.
func (s *Server) approveReview(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(model.RoleReviewer); err != nil {
		return err
	}
	var b struct {
		Comment   string `json:"comment"`
		PublishAt string `json:"publish_at"`
	}
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	var publishAt *time.Time
	if b.PublishAt != "" {
		t, err := time.Parse(time.RFC3339, b.PublishAt)
		if err != nil {
			return invalid("invalid approval", FieldError{Pointer: "/publish_at", Detail: "an RFC 3339 time such as 2027-01-31T09:00:00Z is required"})
		}
		if t = t.UTC().Truncate(time.Microsecond); !t.After(now()) {
			return invalid("invalid approval", FieldError{Pointer: "/publish_at", Detail: "must be in the future; omit it to publish at once"})
		}
		publishAt = &t
	}
	if e := maxLen("/comment", b.Comment, maxComment); e != nil {
		return invalid("invalid approval", *e)
	}
	var out approveAnswer
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		v, st, err := reviewableVersion(tx, p, r)
		if err != nil {
			return err
		}
		ev := &model.ReviewEvent{ID: newID(), TenantID: p.tenant, VersionID: v.ID, Round: st.Round, Kind: model.ReviewApproval, Actor: p.actor,
			Comment: b.Comment, PublishAt: publishAt, At: now()}
		if err := tx.AddReviewEvent(ev); errors.Is(err, store.ErrConflict) {
			return problem(http.StatusConflict, "already-approved", "Already approved", p.actor+" already approved review round "+itoa(st.Round)+" of "+v.APIName+"/"+v.Label)
		} else if err != nil {
			return err
		}
		st.Events = append(st.Events, *ev)
		approvals := st.Approvals(v)
		out = approveAnswer{Approval: ev, Round: st.Round, Approvals: len(approvals), ApprovalsRequired: st.Settings.ApprovalsRequired, Version: v}
		detail := map[string]any{"event": ev.ID, "round": st.Round, "approvals": len(approvals), "required": st.Settings.ApprovalsRequired}
		if publishAt != nil {
			detail["publish_at"] = publishAt
		}
		approval := *rec
		approval.Action, approval.ObjectType, approval.ObjectID, approval.AfterDigest = "review.approve", "version", v.APIName+"/"+v.Label, audit.Digest(ev)
		finish := func() error { approval.Detail = jsonDetail(detail); *rec = approval; return nil }
		if len(approvals) < st.Settings.ApprovalsRequired {
			return finish()
		}
		if at := review.PublishAt(approvals); at != nil && at.After(ev.At) {
			out.Scheduled = &model.ReviewSchedule{TenantID: p.tenant, VersionID: v.ID, APIID: v.APIID, Label: v.Label, Round: st.Round,
				PublishAt: *at, ScheduledBy: p.actor, CreatedAt: ev.At}
			detail["scheduled_for"] = at
			if err := tx.PutReviewSchedule(out.Scheduled); err != nil {
				return err
			}
			return finish()
		}
		before := audit.Digest(v)
		t, err := s.lc.Transition(tx, &lifecycle.Request{Version: v, To: model.StatePublished, Actor: p.op, ActorName: p.actor,
			Reason: "approved in review round " + itoa(st.Round), Now: now()}, newID())
		var chk *lifecycle.CheckError
		if errors.As(err, &chk) {
			out.PublishRefused = &publishRefusal{Type: ProblemBase + "check-failed/" + chk.Check, Check: chk.Check, Detail: chk.Detail, Data: chk.Data}
			detail["publish_refused"] = map[string]any{"check": chk.Check, "detail": chk.Detail}
			return finish()
		} else if err != nil {
			return err
		}
		out.Published = true
		approval.Detail = jsonDetail(detail)
		if err := tx.AppendAudit(&approval); err != nil {
			return err
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.BeforeDigest, rec.AfterDigest = "version.transition", "version", v.APIName+"/"+v.Label, before, audit.Digest(v)
		rec.Detail = jsonDetail(map[string]any{"from": t.From, "to": t.To, "reason": t.Reason, "forced": false})
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// requestChanges sends a version in review back to its authors with a
// comment: it moves to draft, which ends the round (its approvals no
// longer count and any scheduled publication is dropped).
func (s *Server) requestChanges(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(model.RoleReviewer); err != nil {
		return err
	}
	var b commentBody
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	if errs := b.validate(true); errs != nil {
		return invalid("invalid change request", errs...)
	}
	var out struct {
		Event   *model.ReviewEvent `json:"event"`
		Version *model.Version     `json:"version"`
	}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		v, st, err := reviewableVersion(tx, p, r)
		if err != nil {
			return err
		}
		if errs := anchorErrs(v, &b); errs != nil {
			return invalid("invalid comment anchor", errs...)
		}
		ev := &model.ReviewEvent{ID: newID(), TenantID: p.tenant, VersionID: v.ID, Round: st.Round, Kind: model.ReviewChangesRequested, Actor: p.actor,
			Comment: b.Comment, Operation: b.Operation, Pointer: b.Pointer, At: now()}
		if err := tx.AddReviewEvent(ev); err != nil {
			return err
		}
		before := audit.Digest(v)
		t, err := s.lc.Transition(tx, &lifecycle.Request{Version: v, To: model.StateDraft, Actor: p.op, ActorName: p.actor,
			Reason: "changes requested in review round " + itoa(st.Round), Now: now()}, newID())
		if err != nil {
			return err
		}
		dropped := true
		if err := tx.DeleteReviewSchedule(p.tenant, v.ID); errors.Is(err, store.ErrNotFound) {
			dropped = false
		} else if err != nil {
			return err
		}
		out.Event, out.Version = ev, v
		if err := tx.AppendAudit(&model.AuditRecord{TenantID: rec.TenantID, Actor: rec.Actor, RequestID: rec.RequestID, Action: "review.request-changes",
			ObjectType: "version", ObjectID: v.APIName + "/" + v.Label, AfterDigest: audit.Digest(ev),
			Detail: jsonDetail(map[string]any{"event": ev.ID, "round": st.Round, "approvals_cleared": len(st.Approvals(v)), "schedule_dropped": dropped})}); err != nil {
			return err
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.BeforeDigest, rec.AfterDigest = "version.transition", "version", v.APIName+"/"+v.Label, before, audit.Digest(v)
		rec.Detail = jsonDetail(map[string]any{"from": t.From, "to": t.To, "reason": t.Reason, "forced": false})
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}
