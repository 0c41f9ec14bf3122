package admin

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// ---- tenants

type tenantBody struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
}

func validName(ptr, v, what string) *FieldError {
	if !model.ValidName(v) {
		return &FieldError{Pointer: ptr, Detail: what + " must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit"}
	}
	return nil
}

func collectErrs(errs ...*FieldError) []FieldError {
	var out []FieldError
	for _, e := range errs {
		if e != nil {
			out = append(out, *e)
		}
	}
	return out
}

func maxLen(ptr, v string, n int) *FieldError {
	if len(v) > n {
		return &FieldError{Pointer: ptr, Detail: "longer than the maximum of " + itoa(n) + " characters"}
	}
	return nil
}

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	var items []model.Tenant
	err = s.st.View(r.Context(), func(tx store.Tx) error {
		if p.op.System {
			items, err = tx.ListTenants(pg)
			return err
		}
		// A tenant operator sees only its own tenant.
		t, err := tx.GetTenant(p.tenant)
		if err != nil {
			return err
		}
		items = []model.Tenant{}
		if t.ID > pg.After {
			items = append(items, *t)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeList(w, items, pg, func(t model.Tenant) string { return t.ID })
}

// visibleTenant answers 404 for any tenant but the caller's own, unless the
// caller is a system operator: existence is never revealed across tenants.
func visibleTenant(p *principal, id string) error {
	if p.op.System || id == p.tenant {
		return nil
	}
	return notFound("tenant")
}

func (s *Server) getTenant(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("tenant")
	if err := visibleTenant(p, id); err != nil {
		return err
	}
	var t *model.Tenant
	if err := s.st.View(r.Context(), func(tx store.Tx) (err error) { t, err = tx.GetTenant(id); return }); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("tenant")
		}
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.requireSystem(); err != nil {
		return err
	}
	var b tenantBody
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	if errs := collectErrs(validName("/id", b.ID, "id"), maxLen("/display_name", b.DisplayName, 200)); errs != nil {
		return invalid("invalid tenant", errs...)
	}
	t := &model.Tenant{ID: b.ID, DisplayName: b.DisplayName, CreatedAt: now(), UpdatedAt: now()}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		if err := tx.CreateTenant(t); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return conflict("tenant "+b.ID+" already exists", FieldError{Pointer: "/id", Detail: "already exists"})
			}
			return err
		}
		rec.TenantID = t.ID
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "tenant.create", "tenant", t.ID, audit.Digest(t)
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, t)
}

func (s *Server) updateTenant(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("tenant")
	if err := visibleTenant(p, id); err != nil {
		return err
	}
	if err := p.require(model.RoleAdmin); err != nil {
		return err
	}
	var b struct {
		DisplayName *string `json:"display_name"`
	}
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	if b.DisplayName != nil {
		if e := maxLen("/display_name", *b.DisplayName, 200); e != nil {
			return invalid("invalid tenant", *e)
		}
	}
	var t *model.Tenant
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		var err error
		if t, err = tx.GetTenant(id); err != nil {
			return notFoundAs(err, "tenant")
		}
		rec.TenantID, rec.BeforeDigest = id, audit.Digest(t)
		if b.DisplayName != nil {
			t.DisplayName = *b.DisplayName
		}
		t.UpdatedAt = now()
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "tenant.update", "tenant", id, audit.Digest(t)
		return tx.UpdateTenant(t)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

func (s *Server) deleteTenant(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.requireSystem(); err != nil {
		return err
	}
	id := r.PathValue("tenant")
	if id == p.op.TenantID {
		return conflict("a system operator cannot delete its own tenant")
	}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		t, err := tx.GetTenant(id)
		if err != nil {
			return notFoundAs(err, "tenant")
		}
		active, err := tx.ListVersionsByState(id, model.StatePublished, model.StateDeprecated, model.StateBlocked, model.StateInReview)
		if err != nil {
			return err
		}
		if len(active) > 0 {
			return conflict("tenant " + id + " still has " + itoa(len(active)) + " version(s) in review, published, blocked or deprecated; retire or withdraw them first")
		}
		rec.TenantID = id
		rec.Action, rec.ObjectType, rec.ObjectID, rec.BeforeDigest = "tenant.delete", "tenant", id, audit.Digest(t)
		return tx.DeleteTenant(id)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func notFoundAs(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound(what)
	}
	return err
}

// ---- operators

type operatorBody struct {
	Name  string       `json:"name"`
	Email string       `json:"email"`
	Roles []model.Role `json:"roles"`
}

func validRoles(roles []model.Role) *FieldError {
	if len(roles) == 0 {
		return &FieldError{Pointer: "/roles", Detail: "at least one role is required (admin, author, reviewer, operator, auditor)"}
	}
	for i, r := range roles {
		if !r.Valid() {
			return &FieldError{Pointer: "/roles/" + itoa(i), Detail: "unknown role " + string(r) + "; want admin, author, reviewer, operator or auditor"}
		}
	}
	return nil
}

func (s *Server) listOperators(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(model.RoleAdmin, model.RoleAuditor); err != nil {
		return err
	}
	pg, err := page(r)
	if err != nil {
		return err
	}
	var items []model.Operator
	if err := s.st.View(r.Context(), func(tx store.Tx) (err error) { items, err = tx.ListOperators(p.tenant, pg); return }); err != nil {
		return err
	}
	return writeList(w, items, pg, func(o model.Operator) string { return o.Name })
}

func (s *Server) getOperator(w http.ResponseWriter, r *http.Request, p *principal) error {
	name := r.PathValue("operator")
	if name != p.op.Name || p.tenant != p.op.TenantID {
		if err := p.require(model.RoleAdmin, model.RoleAuditor); err != nil {
			return err
		}
	}
	var o *model.Operator
	if err := s.st.View(r.Context(), func(tx store.Tx) (err error) { o, err = tx.GetOperatorByName(p.tenant, name); return }); err != nil {
		return notFoundAs(err, "operator")
	}
	return writeJSON(w, http.StatusOK, o)
}

func (s *Server) createOperator(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(model.RoleAdmin); err != nil {
		return err
	}
	var b operatorBody
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	if errs := collectErrs(validName("/name", b.Name, "name"), maxLen("/email", b.Email, 254), validRoles(b.Roles)); errs != nil {
		return invalid("invalid operator", errs...)
	}
	o := &model.Operator{ID: newID(), TenantID: p.tenant, Name: b.Name, Email: b.Email, Roles: dedupRoles(b.Roles), CreatedAt: now(), UpdatedAt: now()}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		if err := tx.CreateOperator(o); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return conflict("operator "+b.Name+" already exists", FieldError{Pointer: "/name", Detail: "already exists"})
			}
			return err
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "operator.create", "operator", o.Name, audit.Digest(o)
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, o)
}

func dedupRoles(in []model.Role) []model.Role {
	out := []model.Role{}
	for _, r := range in {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func (s *Server) updateOperator(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(model.RoleAdmin); err != nil {
		return err
	}
	var b struct {
		Email *string      `json:"email"`
		Roles []model.Role `json:"roles"`
	}
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	var errs []FieldError
	if b.Email != nil {
		errs = collectErrs(maxLen("/email", *b.Email, 254))
	}
	if b.Roles != nil {
		errs = append(errs, collectErrs(validRoles(b.Roles))...)
	}
	if errs != nil {
		return invalid("invalid operator", errs...)
	}
	var o *model.Operator
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		var err error
		if o, err = tx.GetOperatorByName(p.tenant, r.PathValue("operator")); err != nil {
			return notFoundAs(err, "operator")
		}
		rec.BeforeDigest = audit.Digest(o)
		if b.Email != nil {
			o.Email = *b.Email
		}
		if b.Roles != nil {
			o.Roles = dedupRoles(b.Roles)
		}
		o.UpdatedAt = now()
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "operator.update", "operator", o.Name, audit.Digest(o)
		return tx.UpdateOperator(o)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, o)
}

func (s *Server) deleteOperator(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(model.RoleAdmin); err != nil {
		return err
	}
	name := r.PathValue("operator")
	if name == p.op.Name && p.tenant == p.op.TenantID {
		return conflict("an operator cannot delete itself")
	}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		o, err := tx.GetOperatorByName(p.tenant, name)
		if err != nil {
			return notFoundAs(err, "operator")
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.BeforeDigest = "operator.delete", "operator", o.Name, audit.Digest(o)
		return tx.DeleteOperator(p.tenant, o.ID)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- tokens

type tokenView struct {
	model.Token
	Operator string `json:"operator"`
}

// canManageTokensOf: admins manage every token of their tenant; anyone may
// manage their own.
func canManageTokensOf(p *principal, operatorID string) error {
	if p.has(model.RoleAdmin) || (operatorID == p.op.ID && p.tenant == p.op.TenantID) {
		return nil
	}
	return forbidden("only admins may manage other operators' tokens")
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	var items []tokenView
	err = s.st.View(r.Context(), func(tx store.Tx) error {
		opID := ""
		if name := r.URL.Query().Get("operator"); name != "" {
			o, err := tx.GetOperatorByName(p.tenant, name)
			if err != nil {
				return notFoundAs(err, "operator")
			}
			opID = o.ID
		}
		if !p.has(model.RoleAdmin) && !p.has(model.RoleAuditor) {
			opID = p.op.ID // others see only their own tokens
		}
		toks, err := tx.ListTokens(p.tenant, opID, pg)
		if err != nil {
			return err
		}
		names := map[string]string{}
		items = make([]tokenView, 0, len(toks))
		for _, t := range toks {
			if _, ok := names[t.OperatorID]; !ok {
				if o, err := tx.GetOperator(p.tenant, t.OperatorID); err == nil {
					names[t.OperatorID] = o.Name
				}
			}
			items = append(items, tokenView{Token: t, Operator: names[t.OperatorID]})
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeList(w, items, pg, func(t tokenView) string { return t.ID })
}

func (s *Server) getToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	var tv tokenView
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		t, err := tx.GetToken(p.tenant, r.PathValue("token"))
		if err != nil {
			return notFoundAs(err, "token")
		}
		if !p.has(model.RoleAuditor) {
			if err := canManageTokensOf(p, t.OperatorID); err != nil {
				return notFound("token")
			}
		}
		o, err := tx.GetOperator(p.tenant, t.OperatorID)
		if err != nil {
			return err
		}
		tv = tokenView{Token: *t, Operator: o.Name}
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, tv)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	var b struct {
		Operator  string   `json:"operator"`
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
		return invalid("invalid token", errs...)
	}
	secret := NewSecret()
	tok := &model.Token{ID: newID(), TenantID: p.tenant, Name: b.Name, Prefix: secret[:10], Hash: HashToken(secret), CreatedAt: now()}
	if b.ExpiresIn > 0 {
		exp := now().Add(time.Duration(b.ExpiresIn))
		tok.ExpiresAt = &exp
	}
	var opName string
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		op := p.op
		if b.Operator != "" && !(b.Operator == p.op.Name && p.tenant == p.op.TenantID) {
			o, err := tx.GetOperatorByName(p.tenant, b.Operator)
			if err != nil {
				return notFoundAs(err, "operator")
			}
			op = o
		} else if p.tenant != p.op.TenantID {
			return invalid("name the operator of tenant "+p.tenant+" who owns the token", FieldError{Pointer: "/operator", Detail: "required when acting on another tenant"})
		}
		if err := canManageTokensOf(p, op.ID); err != nil {
			return err
		}
		tok.OperatorID, opName = op.ID, op.Name
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "token.create", "token", tok.ID, audit.Digest(tok)
		return tx.CreateToken(tok)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"token": tokenView{Token: *tok, Operator: opName}, "secret": secret})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	var tok *model.Token
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		var err error
		if tok, err = tx.GetToken(p.tenant, r.PathValue("token")); err != nil {
			return notFoundAs(err, "token")
		}
		if err := canManageTokensOf(p, tok.OperatorID); err != nil {
			return notFound("token")
		}
		rec.BeforeDigest = audit.Digest(tok)
		if tok.RevokedAt == nil {
			t := now()
			tok.RevokedAt = &t
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "token.revoke", "token", tok.ID, audit.Digest(tok)
		return tx.UpdateToken(tok)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, tok)
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		tok, err := tx.GetToken(p.tenant, r.PathValue("token"))
		if err != nil {
			return notFoundAs(err, "token")
		}
		if err := canManageTokensOf(p, tok.OperatorID); err != nil {
			return notFound("token")
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.BeforeDigest = "token.delete", "token", tok.ID, audit.Digest(tok)
		return tx.DeleteToken(p.tenant, tok.ID)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }
