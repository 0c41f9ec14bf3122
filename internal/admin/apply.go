package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// fleetDoc is the declarative form accepted by POST /apply (the CLI turns
// fleet.yaml into it).
type fleetDoc struct {
	Tenants []tenantBody `json:"tenants"`
	APIs    []applyAPI   `json:"apis"`
	DryRun  bool         `json:"dry_run"`
}

type applyAPI struct {
	Tenant      string         `json:"tenant"`
	Name        string         `json:"name"`
	DisplayName string         `json:"display_name"`
	Description string         `json:"description"`
	Owner       string         `json:"owner"`
	Versions    []versionApply `json:"versions"`
}

type versionApply struct {
	versionBody
}

// PlanItem is one line of an apply plan.
type PlanItem struct {
	Action  string   `json:"action"` // create, update, unchanged
	Kind    string   `json:"kind"`   // tenant, api, version
	Name    string   `json:"name"`
	Changes []string `json:"changes,omitempty"`
}

var errDryRun = errors.New("dry run")

// apply converges the store to the document in one transaction: every
// object is created or updated, or nothing is (a failure anywhere rolls the
// whole plan back). Unchanged objects are not written, so applying the
// same document twice changes nothing and audits nothing.
func (s *Server) apply(w http.ResponseWriter, r *http.Request, p *principal) error {
	var doc fleetDoc
	if err := decodeJSON(w, r, 4*maxSpecBody, &doc); err != nil {
		return err
	}
	if len(doc.Tenants) > 0 {
		if err := p.requireSystem(); err != nil {
			return err
		}
	}
	if len(doc.APIs) > 0 {
		if err := p.require(model.RoleAuthor); err != nil {
			return err
		}
	}
	var plan []PlanItem
	err := s.st.Update(r.Context(), func(tx store.Tx) error {
		plan = plan[:0]
		audit := func(tenant, action, typ, id, before, after string) error {
			return tx.AppendAudit(&model.AuditRecord{TenantID: tenant, Actor: p.actor, RequestID: p.reqID, Action: action,
				ObjectType: typ, ObjectID: id, BeforeDigest: before, AfterDigest: after, Detail: jsonDetail(map[string]string{"via": "apply"})})
		}
		for i, tb := range doc.Tenants {
			item, err := applyTenant(tx, fmt.Sprintf("/tenants/%d", i), tb, audit)
			if err != nil {
				return err
			}
			plan = append(plan, item)
		}
		for i, ab := range doc.APIs {
			items, err := s.applyAPI(tx, p, fmt.Sprintf("/apis/%d", i), ab, audit)
			if err != nil {
				return err
			}
			plan = append(plan, items...)
		}
		if doc.DryRun {
			return errDryRun
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDryRun) {
		return err
	}
	applied := err == nil
	if applied {
		for _, it := range plan {
			if it.Action != "unchanged" {
				s.onChange()
				break
			}
		}
	}
	if plan == nil {
		plan = []PlanItem{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"plan": plan, "applied": applied})
}

type auditFn func(tenant, action, typ, id, before, after string) error

func applyTenant(tx store.Tx, ptr string, tb tenantBody, audit auditFn) (PlanItem, error) {
	if errs := collectErrs(validName(ptr+"/id", tb.ID, "id"), maxLen(ptr+"/display_name", tb.DisplayName, 200)); errs != nil {
		return PlanItem{}, invalid("invalid tenant", errs...)
	}
	item := PlanItem{Kind: "tenant", Name: tb.ID}
	t, err := tx.GetTenant(tb.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		t = &model.Tenant{ID: tb.ID, DisplayName: tb.DisplayName, CreatedAt: now(), UpdatedAt: now()}
		item.Action = "create"
		if err := tx.CreateTenant(t); err != nil {
			return item, err
		}
		return item, audit(t.ID, "tenant.create", "tenant", t.ID, "", digest(t))
	case err != nil:
		return item, err
	}
	if t.DisplayName == tb.DisplayName {
		item.Action = "unchanged"
		return item, nil
	}
	before := digest(t)
	item.Action, item.Changes = "update", []string{fmt.Sprintf("display_name: %q -> %q", t.DisplayName, tb.DisplayName)}
	t.DisplayName, t.UpdatedAt = tb.DisplayName, now()
	if err := tx.UpdateTenant(t); err != nil {
		return item, err
	}
	return item, audit(t.ID, "tenant.update", "tenant", t.ID, before, digest(t))
}

func (s *Server) applyAPI(tx store.Tx, p *principal, ptr string, ab applyAPI, audit auditFn) ([]PlanItem, error) {
	tenant := p.tenant
	if ab.Tenant != "" && ab.Tenant != p.tenant {
		if !p.op.System {
			return nil, forbidden("only system operators may apply objects of another tenant (" + ptr + "/tenant)")
		}
		if _, err := tx.GetTenant(ab.Tenant); err != nil {
			return nil, invalid("unknown tenant", FieldError{Pointer: ptr + "/tenant", Detail: "tenant " + ab.Tenant + " does not exist (declare it under tenants)"})
		}
		tenant = ab.Tenant
	}
	body := apiBody{Name: ab.Name, DisplayName: ab.DisplayName, Description: ab.Description, Owner: ab.Owner}
	if errs := body.validate(); errs != nil {
		return nil, invalid("invalid API", prefix(ptr, errs)...)
	}
	item := PlanItem{Kind: "api", Name: tenant + "/" + ab.Name}
	a, err := tx.GetAPI(tenant, ab.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		a = &model.API{ID: newID(), TenantID: tenant, Name: ab.Name, DisplayName: ab.DisplayName, Description: ab.Description, Owner: ab.Owner, CreatedAt: now(), UpdatedAt: now()}
		item.Action = "create"
		if err := tx.CreateAPI(a); err != nil {
			return nil, err
		}
		if err := audit(tenant, "api.create", "api", a.Name, "", digest(a)); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		before := digest(a)
		item.Changes = diffStrings([][3]string{
			{"display_name", a.DisplayName, ab.DisplayName}, {"description", a.Description, ab.Description}, {"owner", a.Owner, ab.Owner}})
		item.Action = "unchanged"
		if len(item.Changes) > 0 {
			item.Action = "update"
			a.DisplayName, a.Description, a.Owner, a.UpdatedAt = ab.DisplayName, ab.Description, ab.Owner, now()
			if err := tx.UpdateAPI(a); err != nil {
				return nil, err
			}
			if err := audit(tenant, "api.update", "api", a.Name, before, digest(a)); err != nil {
				return nil, err
			}
		}
	}
	items := []PlanItem{item}
	seen := map[string]bool{}
	for j, vb := range ab.Versions {
		vptr := fmt.Sprintf("%s/versions/%d", ptr, j)
		if !model.ValidLabel(vb.Version) {
			return nil, invalid("invalid version", FieldError{Pointer: vptr + "/version", Detail: "a version label such as v1 or 1.2.0 is required"})
		}
		if seen[vb.Version] {
			return nil, invalid("duplicate version", FieldError{Pointer: vptr + "/version", Detail: "version " + vb.Version + " is declared twice"})
		}
		seen[vb.Version] = true
		vi, err := applyVersion(tx, p, a, vptr, &vb.versionBody, audit)
		if err != nil {
			return nil, err
		}
		items = append(items, vi)
	}
	return items, nil
}

func applyVersion(tx store.Tx, p *principal, a *model.API, ptr string, b *versionBody, audit auditFn) (PlanItem, error) {
	name := a.TenantID + "/" + a.Name + "/" + b.Version
	item := PlanItem{Kind: "version", Name: name}
	cur, err := tx.GetVersion(a.TenantID, a.ID, b.Version)
	if errors.Is(err, store.ErrNotFound) {
		v := &model.Version{ID: newID(), TenantID: a.TenantID, APIID: a.ID, APIName: a.Name, Label: b.Version, State: model.StateDraft, Author: p.actor, CreatedAt: now(), UpdatedAt: now()}
		if err := buildVersion(b, v); err != nil {
			return item, prefixProblem(err, ptr)
		}
		item.Action = "create"
		if err := tx.CreateVersion(v); err != nil {
			return item, err
		}
		return item, audit(a.TenantID, "version.create", "version", a.Name+"/"+v.Label, "", digest(v))
	}
	if err != nil {
		return item, err
	}
	want := *cur
	if err := buildVersion(b, &want); err != nil {
		return item, prefixProblem(err, ptr)
	}
	item.Changes = versionChanges(cur, &want)
	if len(item.Changes) == 0 {
		item.Action = "unchanged"
		return item, nil
	}
	if cur.State != model.StateDraft {
		return item, conflict(fmt.Sprintf("version %s is %s and its content is frozen; declare a new version instead (%s)", name, cur.State, ptr),
			FieldError{Pointer: ptr, Detail: "changes to a non-draft version: " + fmt.Sprint(item.Changes)})
	}
	item.Action = "update"
	before := digest(cur)
	want.UpdatedAt = now()
	if err := tx.UpdateVersion(&want); err != nil {
		return item, err
	}
	if _, err := noteEditor(tx, p, &want); err != nil {
		return item, err
	}
	return item, audit(a.TenantID, "version.update", "version", a.Name+"/"+want.Label, before, digest(&want))
}

func versionChanges(cur, want *model.Version) []string {
	var out []string
	eq := func(field string, x, y any) {
		bx, _ := json.Marshal(x)
		by, _ := json.Marshal(y)
		if !bytes.Equal(bx, by) {
			out = append(out, field+" changed")
		}
	}
	eq("bindings", cur.Bindings, want.Bindings)
	eq("upstream", cur.Upstream, want.Upstream)
	eq("spec", cur.Spec, want.Spec)
	eq("policy", cur.Policy, want.Policy)
	return out
}

func diffStrings(fields [][3]string) []string {
	var out []string
	for _, f := range fields {
		if f[1] != f[2] {
			out = append(out, fmt.Sprintf("%s: %q -> %q", f[0], f[1], f[2]))
		}
	}
	return out
}

func digest(v any) string { return audit.Digest(v) }

func prefix(ptr string, errs []FieldError) []FieldError {
	for i := range errs {
		errs[i].Pointer = ptr + errs[i].Pointer
	}
	return errs
}

// prefixProblem re-roots the field pointers of a problem at ptr, so an
// error deep inside a fleet document points at its place in the document.
func prefixProblem(err error, ptr string) error {
	var pr *Problem
	if errors.As(err, &pr) {
		c := *pr
		c.Errors = prefix(ptr, append([]FieldError(nil), pr.Errors...))
		return &c
	}
	return err
}
