package admin

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/identity/credential"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// Applications, their API keys and ownership relations are run by the
// platform team: admins and operators.
var consumerRoles = []model.Role{model.RoleAdmin, model.RoleOperator}

type appBody struct {
	Name             string            `json:"name"`
	Description      string            `json:"description"`
	Attributes       map[string]string `json:"attributes"`
	CertFingerprints []string          `json:"cert_fingerprints"`
}

var (
	fingerprintRe = regexp.MustCompile(`^[0-9a-f]{64}$`)
	attrKeyRe     = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
)

func (b *appBody) validate() []FieldError {
	errs := collectErrs(validName("/name", b.Name, "name"), maxLen("/description", b.Description, 4000))
	if len(b.Attributes) > 64 {
		errs = append(errs, FieldError{Pointer: "/attributes", Detail: "at most 64 attributes"})
	}
	for k, v := range b.Attributes {
		if !attrKeyRe.MatchString(k) {
			errs = append(errs, FieldError{Pointer: "/attributes/" + escape(k), Detail: "attribute names are lowercase identifiers"})
		}
		if len(v) > 256 {
			errs = append(errs, FieldError{Pointer: "/attributes/" + escape(k), Detail: "at most 256 characters"})
		}
	}
	for i, fp := range b.CertFingerprints {
		if !fingerprintRe.MatchString(strings.ToLower(fp)) {
			errs = append(errs, FieldError{Pointer: "/cert_fingerprints/" + itoa(i), Detail: "a SHA-256 fingerprint of the certificate DER, 64 hex digits"})
		}
		b.CertFingerprints[i] = strings.ToLower(fp)
	}
	return errs
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	var items []model.Application
	if err := s.st.View(r.Context(), func(tx store.Tx) (err error) { items, err = tx.ListApps(p.tenant, pg); return }); err != nil {
		return err
	}
	return writeList(w, items, pg, func(a model.Application) string { return a.Name })
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	var a *model.Application
	if err := s.st.View(r.Context(), func(tx store.Tx) (err error) { a, err = tx.GetApp(p.tenant, r.PathValue("app")); return }); err != nil {
		return notFoundAs(err, "application")
	}
	return writeJSON(w, http.StatusOK, a)
}

func (s *Server) createApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(consumerRoles...); err != nil {
		return err
	}
	var b appBody
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	if errs := b.validate(); errs != nil {
		return invalid("invalid application", errs...)
	}
	a := &model.Application{ID: newID(), TenantID: p.tenant, Name: b.Name, Description: b.Description, Attributes: b.Attributes,
		CertFingerprints: b.CertFingerprints, CreatedAt: now(), UpdatedAt: now()}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		if err := tx.CreateApp(a); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return conflict("application "+a.Name+" already exists", FieldError{Pointer: "/name", Detail: "already exists"})
			}
			return err
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "app.create", "application", a.Name, audit.Digest(a)
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a)
}

func (s *Server) updateApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(consumerRoles...); err != nil {
		return err
	}
	var b struct {
		Description      *string           `json:"description"`
		Attributes       map[string]string `json:"attributes"`
		CertFingerprints []string          `json:"cert_fingerprints"`
	}
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	var a *model.Application
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		var err error
		if a, err = tx.GetApp(p.tenant, r.PathValue("app")); err != nil {
			return notFoundAs(err, "application")
		}
		rec.BeforeDigest = audit.Digest(a)
		body := appBody{Name: a.Name, Description: deref(b.Description, a.Description), Attributes: a.Attributes, CertFingerprints: a.CertFingerprints}
		if b.Attributes != nil {
			body.Attributes = b.Attributes
		}
		if b.CertFingerprints != nil {
			body.CertFingerprints = b.CertFingerprints
		}
		if errs := body.validate(); errs != nil {
			return invalid("invalid application", errs...)
		}
		a.Description, a.Attributes, a.CertFingerprints, a.UpdatedAt = body.Description, body.Attributes, body.CertFingerprints, now()
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "app.update", "application", a.Name, audit.Digest(a)
		return tx.UpdateApp(a)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}

func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(consumerRoles...); err != nil {
		return err
	}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		a, err := tx.GetApp(p.tenant, r.PathValue("app"))
		if err != nil {
			return notFoundAs(err, "application")
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.BeforeDigest = "app.delete", "application", a.Name, audit.Digest(a)
		return tx.DeleteApp(p.tenant, a.ID)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- API keys

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	var items []model.APIKey
	err = s.st.View(r.Context(), func(tx store.Tx) error {
		a, err := tx.GetApp(p.tenant, r.PathValue("app"))
		if err != nil {
			return notFoundAs(err, "application")
		}
		items, err = tx.ListAPIKeys(p.tenant, a.ID, pg)
		return err
	})
	if err != nil {
		return err
	}
	return writeList(w, items, pg, func(k model.APIKey) string { return k.ID })
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(consumerRoles...); err != nil {
		return err
	}
	var b struct {
		Name      string   `json:"name"`
		ExpiresIn duration `json:"expires_in"`
	}
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	errs := collectErrs(validName("/name", b.Name, "name"))
	if b.ExpiresIn < 0 || time.Duration(b.ExpiresIn) > 5*365*24*time.Hour {
		errs = append(errs, FieldError{Pointer: "/expires_in", Detail: "must be positive and at most 5 years"})
	}
	if errs != nil {
		return invalid("invalid API key", errs...)
	}
	secret, prefix, hash := credential.NewAPIKey()
	k := &model.APIKey{ID: newID(), TenantID: p.tenant, Name: b.Name, Prefix: prefix, Hash: hash[:], CreatedAt: now()}
	if b.ExpiresIn > 0 {
		exp := now().Add(time.Duration(b.ExpiresIn))
		k.ExpiresAt = &exp
	}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		a, err := tx.GetApp(p.tenant, r.PathValue("app"))
		if err != nil {
			return notFoundAs(err, "application")
		}
		k.AppID, k.AppName = a.ID, a.Name
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "apikey.create", "api_key", k.ID, audit.Digest(k)
		return tx.CreateAPIKey(k)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"key": k, "secret": secret})
}

// keyOfApp loads a key and checks it belongs to the application in the path.
func keyOfApp(tx store.Tx, p *principal, r *http.Request) (*model.APIKey, error) {
	a, err := tx.GetApp(p.tenant, r.PathValue("app"))
	if err != nil {
		return nil, notFoundAs(err, "application")
	}
	k, err := tx.GetAPIKey(p.tenant, r.PathValue("key"))
	if err != nil || k.AppID != a.ID {
		return nil, notFound("API key")
	}
	return k, nil
}

func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(consumerRoles...); err != nil {
		return err
	}
	var k *model.APIKey
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		var err error
		if k, err = keyOfApp(tx, p, r); err != nil {
			return err
		}
		rec.BeforeDigest = audit.Digest(k)
		if k.RevokedAt == nil {
			t := now()
			k.RevokedAt = &t
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "apikey.revoke", "api_key", k.ID, audit.Digest(k)
		return tx.UpdateAPIKey(k)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, k)
}

func (s *Server) deleteAPIKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(consumerRoles...); err != nil {
		return err
	}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		k, err := keyOfApp(tx, p, r)
		if err != nil {
			return err
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.BeforeDigest = "apikey.delete", "api_key", k.ID, audit.Digest(k)
		return tx.DeleteAPIKey(p.tenant, k.ID)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- ownership

var (
	subjectRe = regexp.MustCompile(`^(user|app|device):[A-Za-z0-9._@:-]{1,200}$`)
	objTypeRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
)

type ownershipBody struct {
	Subject    string `json:"subject"`
	ObjectType string `json:"object_type"`
	ObjectID   string `json:"object_id"`
}

func (b *ownershipBody) validate(ptr string) []FieldError {
	var errs []FieldError
	if !subjectRe.MatchString(b.Subject) {
		errs = append(errs, FieldError{Pointer: ptr + "/subject", Detail: "a subject such as user:alice, app:fleet-ops or device:d-17"})
	}
	if !objTypeRe.MatchString(b.ObjectType) {
		errs = append(errs, FieldError{Pointer: ptr + "/object_type", Detail: "a lowercase type such as vehicle or device"})
	}
	if b.ObjectID == "" || len(b.ObjectID) > 256 {
		errs = append(errs, FieldError{Pointer: ptr + "/object_id", Detail: "1 to 256 characters"})
	}
	return errs
}

func (s *Server) listOwnerships(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.OwnershipFilter{Subject: q.Get("subject"), ObjectType: q.Get("object_type"), ObjectID: q.Get("object_id"), After: pg.After, Limit: pg.Limit}
	var items []model.Ownership
	if err := s.st.View(r.Context(), func(tx store.Tx) (err error) { items, err = tx.ListOwnerships(p.tenant, f); return }); err != nil {
		return err
	}
	return writeList(w, items, pg, func(o model.Ownership) string { return o.Subject + "|" + o.ObjectType + "|" + o.ObjectID })
}

// createOwnerships adds one relation or a batch ({"items": [...]}) in one
// transaction: all or nothing.
func (s *Server) createOwnerships(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(consumerRoles...); err != nil {
		return err
	}
	var b struct {
		ownershipBody
		Items []ownershipBody `json:"items"`
	}
	if err := decodeJSON(w, r, 8*maxBody, &b); err != nil {
		return err
	}
	items, ptr := b.Items, "/items/"
	if items == nil {
		items, ptr = []ownershipBody{b.ownershipBody}, ""
	}
	if len(items) > 10000 {
		return invalid("too many relations", FieldError{Pointer: "/items", Detail: "at most 10000 per request"})
	}
	var errs []FieldError
	for i := range items {
		p := ptr
		if p != "" {
			p += itoa(i)
		}
		errs = append(errs, items[i].validate(p)...)
	}
	if errs != nil {
		return invalid("invalid ownership", errs...)
	}
	out := make([]model.Ownership, len(items))
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		for i, it := range items {
			out[i] = model.Ownership{TenantID: p.tenant, Subject: it.Subject, ObjectType: it.ObjectType, ObjectID: it.ObjectID, CreatedAt: now()}
			if err := tx.AddOwnership(&out[i]); err != nil {
				if errors.Is(err, store.ErrConflict) {
					return conflict("relation already exists: "+it.Subject+" owns "+it.ObjectType+" "+it.ObjectID, FieldError{Pointer: ptr + itoa(i), Detail: "already exists"})
				}
				return err
			}
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "ownership.create", "ownership", items[0].Subject, audit.Digest(out)
		rec.Detail = jsonDetail(map[string]int{"count": len(out)})
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, list[model.Ownership]{Items: out})
}

func (s *Server) deleteOwnership(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(consumerRoles...); err != nil {
		return err
	}
	q := r.URL.Query()
	b := ownershipBody{Subject: q.Get("subject"), ObjectType: q.Get("object_type"), ObjectID: q.Get("object_id")}
	if errs := b.validate("/query"); errs != nil {
		return badRequest("name the relation with subject, object_type and object_id", errs...)
	}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		o := &model.Ownership{TenantID: p.tenant, Subject: b.Subject, ObjectType: b.ObjectType, ObjectID: b.ObjectID}
		if err := tx.RemoveOwnership(o); err != nil {
			return notFoundAs(err, "relation")
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.BeforeDigest = "ownership.delete", "ownership", b.Subject, audit.Digest(o)
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
