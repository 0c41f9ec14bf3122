package admin

import (
	"errors"
	"net/http"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/lifecycle"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/spec/lint"
	"github.com/fleetgate/fleetgate/internal/store"
)

// governanceRoutes serve a tenant's governance settings and the overlaps
// of a version with other APIs.
func (s *Server) governanceRoutes() []route {
	return []route{
		{"GET", "/governance", s.getGovernance},
		{"PUT", "/governance", s.putGovernance},
		{"GET", "/apis/{api}/versions/{version}/overlaps", s.versionOverlaps},
	}
}

// governanceBody is what an operator sets; absent or zero values mean the
// default, so PUT {} resets a tenant to the defaults.
type governanceBody struct {
	LintLevels    map[string]string `json:"lint_levels"`
	VersionBudget int               `json:"version_budget"`
	APIBudgets    map[string]int    `json:"api_budgets"`
	RetireWindow  string            `json:"retire_window"` // "30d", "36h"
}

// effectiveGovernance is what the checks apply, defaults filled in.
type effectiveGovernance struct {
	LintLevels    map[string]lint.Level `json:"lint_levels"`
	VersionBudget int                   `json:"version_budget"`
	APIBudgets    map[string]int        `json:"api_budgets"`
	RetireWindow  string                `json:"retire_window"`
}

type governanceAnswer struct {
	Tenant string `json:"tenant"`
	governanceBody
	Effective effectiveGovernance `json:"effective"`
	Rules     []lint.RuleInfo     `json:"rules"`
	UpdatedBy string              `json:"updated_by,omitempty"`
	UpdatedAt string              `json:"updated_at,omitempty"`
}

func (s *Server) governanceAnswer(tx store.Tx, tenant string) (*governanceAnswer, error) {
	out := &governanceAnswer{Tenant: tenant, governanceBody: governanceBody{LintLevels: map[string]string{}, APIBudgets: map[string]int{}}, Rules: lint.Rules()}
	stored, err := tx.GetGovernanceSettings(tenant)
	switch {
	case err == nil:
		out.VersionBudget, out.UpdatedBy, out.UpdatedAt = stored.VersionBudget, stored.UpdatedBy, stored.UpdatedAt.Format("2006-01-02T15:04:05.999999Z07:00")
		if stored.LintLevels != nil {
			out.LintLevels = stored.LintLevels
		}
		if stored.APIBudgets != nil {
			out.APIBudgets = stored.APIBudgets
		}
		if stored.RetireWindow > 0 {
			out.RetireWindow = lifecycle.FormatWindow(stored.RetireWindow)
		}
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	set, err := s.gov.Settings(tx, tenant)
	if err != nil {
		return nil, err
	}
	out.Effective = effectiveGovernance{LintLevels: map[string]lint.Level{}, VersionBudget: set.Budget, APIBudgets: out.APIBudgets,
		RetireWindow: lifecycle.FormatWindow(set.RetireWindow)}
	for _, r := range out.Rules {
		lvl := r.Level
		if o, ok := set.LintLevels[r.ID]; ok {
			lvl = o
		}
		out.Effective.LintLevels[r.ID] = lvl
	}
	return out, nil
}

// getGovernance shows the settings to any operator of the tenant: authors
// need to know the rules their versions are held to.
func (s *Server) getGovernance(w http.ResponseWriter, r *http.Request, p *principal) error {
	var out *governanceAnswer
	if err := s.st.View(r.Context(), func(tx store.Tx) (err error) { out, err = s.governanceAnswer(tx, p.tenant); return }); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// putGovernance replaces the settings (admin only), validated as a whole:
// every bad field is reported, and nothing is written unless all are good.
func (s *Server) putGovernance(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(model.RoleAdmin); err != nil {
		return err
	}
	var b governanceBody
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	window, err := lifecycle.ParseWindow(b.RetireWindow)
	if err != nil {
		return invalid("invalid governance settings", FieldError{Pointer: "/retire_window", Detail: err.Error()})
	}
	next := &model.GovernanceSettings{TenantID: p.tenant, LintLevels: b.LintLevels, VersionBudget: b.VersionBudget,
		APIBudgets: b.APIBudgets, RetireWindow: window, UpdatedBy: p.actor, UpdatedAt: now()}
	var out *governanceAnswer
	err = s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		errs, err := lifecycle.ValidateSettings(next, func(name string) (bool, error) {
			_, err := tx.GetAPI(p.tenant, name)
			if errors.Is(err, store.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		})
		if err != nil {
			return err
		}
		if len(errs) > 0 {
			fes := make([]FieldError, len(errs))
			for i, e := range errs {
				fes[i] = FieldError{Pointer: e.Pointer, Detail: e.Detail}
			}
			return invalid("invalid governance settings", fes...)
		}
		before, err := tx.GetGovernanceSettings(p.tenant)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if before != nil {
			rec.BeforeDigest = audit.Digest(before)
		}
		if err := tx.PutGovernanceSettings(next); err != nil {
			return err
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "governance.update", "governance", p.tenant, audit.Digest(next)
		rec.Detail = jsonDetail(map[string]any{"lint_levels": next.LintLevels, "version_budget": next.VersionBudget,
			"api_budgets": next.APIBudgets, "retire_window": lifecycle.FormatWindow(next.RetireWindow)})
		out, err = s.governanceAnswer(tx, p.tenant)
		return err
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// versionOverlaps lists the near-duplicates of a version: what submitting
// it reports as warnings, at any time (other APIs change too).
func (s *Server) versionOverlaps(w http.ResponseWriter, r *http.Request, p *principal) error {
	var out []lifecycle.Overlap
	var v *model.Version
	err := s.st.View(r.Context(), func(tx store.Tx) (err error) {
		if _, v, err = loadVersion(tx, p, r); err != nil {
			return err
		}
		out, err = lifecycle.Overlaps(tx, v)
		return err
	})
	if err != nil {
		return err
	}
	if out == nil {
		out = []lifecycle.Overlap{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"api": v.APIName, "version": v.Label, "items": out})
}
