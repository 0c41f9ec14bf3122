package admin

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/review"
	"github.com/fleetgate/fleetgate/internal/store"
)

func (s *Server) getReviewSettings(w http.ResponseWriter, r *http.Request, p *principal) error {
	var set model.ReviewSettings
	if err := s.st.View(r.Context(), func(tx store.Tx) (err error) { set, err = review.Settings(tx, p.tenant); return }); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, set)
}

// putReviewSettings replaces the tenant's review rules. Only admins may:
// the rules decide who can publish. Every named approver must be an
// operator of the tenant holding the reviewer role, checked here so that
// a typo cannot leave a tenant with approvers nobody can act as.
func (s *Server) putReviewSettings(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(model.RoleAdmin); err != nil {
		return err
	}
	var b struct {
		ApprovalsRequired *int     `json:"approvals_required"`
		Approvers         []string `json:"approvers"`
	}
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	var errs []FieldError
	if b.ApprovalsRequired == nil || *b.ApprovalsRequired < 1 || *b.ApprovalsRequired > review.MaxApprovals {
		errs = append(errs, FieldError{Pointer: "/approvals_required", Detail: fmt.Sprintf("an integer from 1 to %d is required", review.MaxApprovals)})
	}
	if len(b.Approvers) > 100 {
		errs = append(errs, FieldError{Pointer: "/approvers", Detail: "at most 100 approvers"})
		b.Approvers = nil
	}
	for i, n := range b.Approvers {
		if !model.ValidName(n) {
			errs = append(errs, FieldError{Pointer: "/approvers/" + itoa(i), Detail: "an operator name is required"})
		} else if slices.Index(b.Approvers, n) != i {
			errs = append(errs, FieldError{Pointer: "/approvers/" + itoa(i), Detail: "listed twice"})
		}
	}
	if errs != nil {
		return invalid("invalid review settings", errs...)
	}
	set := &model.ReviewSettings{TenantID: p.tenant, ApprovalsRequired: *b.ApprovalsRequired, Approvers: b.Approvers, UpdatedBy: p.actor, UpdatedAt: now()}
	if set.Approvers == nil {
		set.Approvers = []string{}
	}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		var errs []FieldError
		for i, n := range set.Approvers {
			op, err := tx.GetOperatorByName(p.tenant, n)
			switch {
			case errors.Is(err, store.ErrNotFound):
				errs = append(errs, FieldError{Pointer: "/approvers/" + itoa(i), Detail: "no operator " + n + " in this tenant"})
			case err != nil:
				return err
			case !op.HasRole(model.RoleReviewer):
				errs = append(errs, FieldError{Pointer: "/approvers/" + itoa(i), Detail: "operator " + n + " does not hold the reviewer role"})
			}
		}
		if errs != nil {
			return invalid("invalid review settings", errs...)
		}
		before, err := review.Settings(tx, p.tenant)
		if err != nil {
			return err
		}
		rec.Action, rec.ObjectType, rec.ObjectID = "review.settings.update", "review-settings", p.tenant
		rec.BeforeDigest, rec.AfterDigest = audit.Digest(before), audit.Digest(set)
		rec.Detail = jsonDetail(map[string]any{"approvals_required": set.ApprovalsRequired, "approvers": set.Approvers})
		return tx.PutReviewSettings(set)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, set)
}
