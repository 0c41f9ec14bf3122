package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/lifecycle"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
	"github.com/fleetgate/fleetgate/internal/spec"
	"github.com/fleetgate/fleetgate/internal/store"
)

// ---- APIs

type apiBody struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	Description string `json:"description"`
	Owner       string `json:"owner"`
}

func (b *apiBody) validate() []FieldError {
	var owner *FieldError
	if strings.TrimSpace(b.Owner) == "" {
		owner = &FieldError{Pointer: "/owner", Detail: "an owner (team or person accountable for the API) is required"}
	}
	return collectErrs(validName("/name", b.Name, "name"), owner, maxLen("/owner", b.Owner, 200),
		maxLen("/display_name", b.DisplayName, 200), maxLen("/description", b.Description, 4000))
}

func (s *Server) listAPIs(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	var items []model.API
	if err := s.st.View(r.Context(), func(tx store.Tx) (err error) { items, err = tx.ListAPIs(p.tenant, pg); return }); err != nil {
		return err
	}
	return writeList(w, items, pg, func(a model.API) string { return a.Name })
}

func (s *Server) getAPI(w http.ResponseWriter, r *http.Request, p *principal) error {
	var a *model.API
	if err := s.st.View(r.Context(), func(tx store.Tx) (err error) { a, err = tx.GetAPI(p.tenant, r.PathValue("api")); return }); err != nil {
		return notFoundAs(err, "API")
	}
	return writeJSON(w, http.StatusOK, a)
}

func (s *Server) createAPI(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(model.RoleAuthor); err != nil {
		return err
	}
	var b apiBody
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	if errs := b.validate(); errs != nil {
		return invalid("invalid API", errs...)
	}
	a := &model.API{ID: newID(), TenantID: p.tenant, Name: b.Name, DisplayName: b.DisplayName, Description: b.Description, Owner: b.Owner, CreatedAt: now(), UpdatedAt: now()}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		return createAPI(tx, rec, a)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a)
}

func createAPI(tx store.Tx, rec *model.AuditRecord, a *model.API) error {
	if err := tx.CreateAPI(a); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return conflict("API "+a.Name+" already exists", FieldError{Pointer: "/name", Detail: "already exists"})
		}
		return err
	}
	rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "api.create", "api", a.Name, audit.Digest(a)
	return nil
}

func (s *Server) updateAPI(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(model.RoleAuthor); err != nil {
		return err
	}
	var b struct {
		DisplayName *string `json:"display_name"`
		Description *string `json:"description"`
		Owner       *string `json:"owner"`
	}
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	var a *model.API
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		var err error
		if a, err = tx.GetAPI(p.tenant, r.PathValue("api")); err != nil {
			return notFoundAs(err, "API")
		}
		rec.BeforeDigest = audit.Digest(a)
		body := apiBody{Name: a.Name, DisplayName: deref(b.DisplayName, a.DisplayName), Description: deref(b.Description, a.Description), Owner: deref(b.Owner, a.Owner)}
		if errs := body.validate(); errs != nil {
			return invalid("invalid API", errs...)
		}
		a.DisplayName, a.Description, a.Owner, a.UpdatedAt = body.DisplayName, body.Description, body.Owner, now()
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "api.update", "api", a.Name, audit.Digest(a)
		return tx.UpdateAPI(a)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}

func deref(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}

func (s *Server) deleteAPI(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(model.RoleAuthor); err != nil {
		return err
	}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		a, err := tx.GetAPI(p.tenant, r.PathValue("api"))
		if err != nil {
			return notFoundAs(err, "API")
		}
		vs, err := tx.ListVersions(p.tenant, a.ID, store.Page{Limit: 1000})
		if err != nil {
			return err
		}
		var live []string
		for _, v := range vs {
			if v.State != model.StateDraft && v.State != model.StateRetired {
				live = append(live, v.Label+" ("+string(v.State)+")")
			}
		}
		if len(live) > 0 {
			return conflict("API " + a.Name + " has versions that are not draft or retired: " + strings.Join(live, ", ") + "; retire them first")
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.BeforeDigest = "api.delete", "api", a.Name, audit.Digest(a)
		return tx.DeleteAPI(p.tenant, a.ID)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- versions

type versionBody struct {
	Version  string          `json:"version"`
	Bindings *model.Bindings `json:"bindings"`
	Upstream *model.Upstream `json:"upstream"`
	Spec     *string         `json:"spec"`
	Policy   *model.Policy   `json:"policy"`
}

// buildVersion validates b and fills v: the spec is parsed (and kept
// verbatim), and bindings are taken from the body or, when absent,
// extracted from the spec.
func buildVersion(b *versionBody, v *model.Version) error {
	var errs []FieldError
	if b.Spec != nil {
		doc, err := spec.Parse([]byte(*b.Spec))
		if err != nil {
			var se *spec.Error
			if errors.As(err, &se) {
				return invalid("the spec document is not well-formed: "+se.Message, FieldError{
					Pointer: "/spec", Detail: fmt.Sprintf("%s (at %s in the document)", se.Message, orRoot(se.Pointer)), Line: se.Line, Column: se.Column})
			}
			return invalid("the spec document is not well-formed", FieldError{Pointer: "/spec", Detail: err.Error()})
		}
		v.Spec = &model.Spec{Format: doc.Format, Version: doc.Version, Content: *b.Spec}
		if b.Bindings == nil {
			v.Bindings = doc.Bindings()
		}
	}
	if b.Bindings != nil {
		v.Bindings = *b.Bindings
	}
	if b.Upstream != nil {
		v.Upstream = *b.Upstream
	}
	if b.Policy != nil {
		v.Policy = *b.Policy
	}
	errs = append(errs, validateBindings(&v.Bindings)...)
	errs = append(errs, validatePolicy(&v.Policy, &v.Bindings)...)
	errs = append(errs, validateUpstream(&v.Upstream)...)
	if errs != nil {
		return invalid("invalid version", errs...)
	}
	return nil
}

func orRoot(p string) string {
	if p == "" {
		return "the document root"
	}
	return p
}

var httpMethods = map[string]bool{"GET": true, "PUT": true, "POST": true, "DELETE": true, "PATCH": true, "HEAD": true, "OPTIONS": true, "TRACE": true}

func validateBindings(b *model.Bindings) []FieldError {
	var errs []FieldError
	add := func(ptr, detail string) { errs = append(errs, FieldError{Pointer: ptr, Detail: detail}) }
	if h := b.HTTP; h != nil {
		if h.BasePath != "" && !strings.HasPrefix(h.BasePath, "/") {
			add("/bindings/http/base_path", "must start with '/'")
		}
		if len(h.Operations) > 10000 {
			add("/bindings/http/operations", "more than 10000 operations")
		}
		for i, op := range h.Operations {
			ptr := fmt.Sprintf("/bindings/http/operations/%d", i)
			if !httpMethods[op.Method] {
				add(ptr+"/method", "unknown HTTP method "+op.Method)
			}
			if !strings.HasPrefix(op.Path, "/") || len(op.Path) > 2048 {
				add(ptr+"/path", "must start with '/' and be at most 2048 characters")
			}
		}
	}
	if m := b.MQTT; m != nil {
		for i, c := range m.Channels {
			ptr := fmt.Sprintf("/bindings/mqtt/channels/%d", i)
			if c.Topic == "" || len(c.Topic) > 65535 || strings.ContainsRune(c.Topic, 0) {
				add(ptr+"/topic", "must be a non-empty MQTT topic without NUL")
			}
			if c.Action != "publish" && c.Action != "subscribe" {
				add(ptr+"/action", "must be publish or subscribe")
			}
		}
	}
	if c := b.CoAP; c != nil {
		for i, r := range c.Resources {
			if !strings.HasPrefix(r.Path, "/") {
				add(fmt.Sprintf("/bindings/coap/resources/%d/path", i), "must start with '/'")
			}
		}
	}
	return errs
}

func validateUpstream(u *model.Upstream) []FieldError {
	var errs []FieldError
	if len(u.Targets) > 64 {
		errs = append(errs, FieldError{Pointer: "/upstream/targets", Detail: "at most 64 targets"})
	}
	for i, t := range u.Targets {
		if strings.HasPrefix(t, "mqtt:") {
			// An MQTT target turns HTTP operations into commands published
			// to devices: mqtt:<topic template>?qos=N, alone.
			if _, err := policy.ParseMQTTTarget(t); err != nil || len(u.Targets) != 1 {
				detail := "an MQTT target must be the only target"
				if err != nil {
					detail = err.Error()
				}
				errs = append(errs, FieldError{Pointer: fmt.Sprintf("/upstream/targets/%d", i), Detail: detail})
			}
			continue
		}
		pu, err := url.Parse(t)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || pu.User != nil {
			errs = append(errs, FieldError{Pointer: fmt.Sprintf("/upstream/targets/%d", i), Detail: "must be an http:// or https:// URL with a host and no credentials"})
		}
	}
	return errs
}

// versionView is a version as listed: the spec content is omitted from
// lists to keep them small; GET of one version includes it.
func stripSpec(vs []model.Version) []model.Version {
	for i := range vs {
		if vs[i].Spec != nil {
			c := *vs[i].Spec
			c.Content = ""
			vs[i].Spec = &c
		}
	}
	return vs
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	var items []model.Version
	err = s.st.View(r.Context(), func(tx store.Tx) error {
		a, err := tx.GetAPI(p.tenant, r.PathValue("api"))
		if err != nil {
			return notFoundAs(err, "API")
		}
		items, err = tx.ListVersions(p.tenant, a.ID, pg)
		return err
	})
	if err != nil {
		return err
	}
	return writeList(w, stripSpec(items), pg, func(v model.Version) string { return v.Label })
}

// loadVersion reads the API and version named in the path.
func loadVersion(tx store.Tx, p *principal, r *http.Request) (*model.API, *model.Version, error) {
	a, err := tx.GetAPI(p.tenant, r.PathValue("api"))
	if err != nil {
		return nil, nil, notFoundAs(err, "API")
	}
	v, err := tx.GetVersion(p.tenant, a.ID, r.PathValue("version"))
	if err != nil {
		return nil, nil, notFoundAs(err, "version")
	}
	return a, v, nil
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request, p *principal) error {
	var v *model.Version
	if err := s.st.View(r.Context(), func(tx store.Tx) (err error) { _, v, err = loadVersion(tx, p, r); return }); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) createVersion(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(model.RoleAuthor); err != nil {
		return err
	}
	var b versionBody
	if err := decodeJSON(w, r, maxSpecBody, &b); err != nil {
		return err
	}
	if !model.ValidLabel(b.Version) {
		return invalid("invalid version", FieldError{Pointer: "/version", Detail: "a version label such as v1, 1.2 or v2.0.1-beta.1 is required"})
	}
	v := &model.Version{ID: newID(), TenantID: p.tenant, Label: b.Version, State: model.StateDraft, Author: p.actor, CreatedAt: now(), UpdatedAt: now()}
	if err := buildVersion(&b, v); err != nil {
		return err
	}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		a, err := tx.GetAPI(p.tenant, r.PathValue("api"))
		if err != nil {
			return notFoundAs(err, "API")
		}
		v.APIID, v.APIName = a.ID, a.Name
		return createVersion(tx, rec, v)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, v)
}

func createVersion(tx store.Tx, rec *model.AuditRecord, v *model.Version) error {
	if err := tx.CreateVersion(v); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return conflict("version "+v.Label+" of "+v.APIName+" already exists", FieldError{Pointer: "/version", Detail: "already exists"})
		}
		return err
	}
	rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "version.create", "version", v.APIName+"/"+v.Label, audit.Digest(v)
	return nil
}

// updateVersion changes a draft. Once submitted, a version's content is
// frozen: what was reviewed is what runs.
func (s *Server) updateVersion(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(model.RoleAuthor); err != nil {
		return err
	}
	var b versionBody
	if err := decodeJSON(w, r, maxSpecBody, &b); err != nil {
		return err
	}
	if b.Version != "" {
		return invalid("the version label cannot be changed", FieldError{Pointer: "/version", Detail: "immutable"})
	}
	var v *model.Version
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		var err error
		if _, v, err = loadVersion(tx, p, r); err != nil {
			return err
		}
		if err := updateDraft(tx, rec, v, &b); err != nil {
			return err
		}
		if co, err := noteEditor(tx, p, v); err != nil || co != "" {
			rec.Detail = jsonDetail(map[string]any{"co_author_added": co})
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func updateDraft(tx store.Tx, rec *model.AuditRecord, v *model.Version, b *versionBody) error {
	if v.State != model.StateDraft {
		return conflict("version " + v.Label + " is " + string(v.State) + "; only drafts can be changed (create a new version instead)")
	}
	rec.BeforeDigest = audit.Digest(v)
	if err := buildVersion(b, v); err != nil {
		return err
	}
	v.UpdatedAt = now()
	rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "version.update", "version", v.APIName+"/"+v.Label, audit.Digest(v)
	return tx.UpdateVersion(v)
}

func (s *Server) deleteVersion(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(model.RoleAuthor); err != nil {
		return err
	}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		_, v, err := loadVersion(tx, p, r)
		if err != nil {
			return err
		}
		if v.State != model.StateDraft && v.State != model.StateRetired {
			return conflict("version " + v.Label + " is " + string(v.State) + "; only draft or retired versions can be deleted")
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.BeforeDigest = "version.delete", "version", v.APIName+"/"+v.Label, audit.Digest(v)
		return tx.DeleteVersion(p.tenant, v.ID)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listTransitions(w http.ResponseWriter, r *http.Request, p *principal) error {
	var items []model.Transition
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		_, v, err := loadVersion(tx, p, r)
		if err != nil {
			return err
		}
		items, err = tx.ListTransitions(p.tenant, v.ID)
		return err
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list[model.Transition]{Items: items})
}

func (s *Server) transition(w http.ResponseWriter, r *http.Request, p *principal) error {
	var b struct {
		To        model.State `json:"to"`
		Reason    string      `json:"reason"`
		Sunset    *time.Time  `json:"sunset"`
		Successor string      `json:"successor"`
		Force     bool        `json:"force"`
	}
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	if !lifecycle.ValidState(b.To) {
		return invalid("unknown state", FieldError{Pointer: "/to", Detail: "want draft, in_review, published, deprecated, retired or blocked"})
	}
	if e := maxLen("/reason", b.Reason, 2000); e != nil {
		return invalid("invalid transition", *e)
	}
	if b.Successor != "" && !model.ValidLabel(b.Successor) {
		return invalid("invalid transition", FieldError{Pointer: "/successor", Detail: "must be a version label"})
	}
	var out struct {
		Version    *model.Version    `json:"version"`
		Transition *model.Transition `json:"transition"`
		// Warnings do not refuse the transition (near-duplicates).
		Warnings []lifecycle.Warning `json:"warnings,omitempty"`
	}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		_, v, err := loadVersion(tx, p, r)
		if err != nil {
			return err
		}
		rec.BeforeDigest = audit.Digest(v)
		from := v.State
		req := &lifecycle.Request{Version: v, To: b.To, Actor: p.op, ActorName: p.actor,
			Reason: b.Reason, Sunset: b.Sunset, Successor: b.Successor, Force: b.Force, Now: now()}
		t, err := s.lc.Transition(tx, req, newID())
		if err != nil {
			return err
		}
		out.Version, out.Transition, out.Warnings = v, t, req.Warnings
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "version.transition", "version", v.APIName+"/"+v.Label, audit.Digest(v)
		detail := map[string]any{"from": from, "to": b.To, "reason": b.Reason, "forced": b.Force}
		if len(req.Warnings) > 0 { // reviewers see what was accepted despite warnings
			checks := make([]string, len(req.Warnings))
			for i, w := range req.Warnings {
				checks[i] = w.Check
			}
			detail["warnings"] = checks
		}
		rec.Detail = jsonDetail(detail)
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}
