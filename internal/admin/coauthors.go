package admin

import (
	"errors"
	"net/http"
	"slices"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

func (s *Server) listCoAuthors(w http.ResponseWriter, r *http.Request, p *principal) error {
	var items []model.CoAuthor
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		_, v, err := loadVersion(tx, p, r)
		if err != nil {
			return err
		}
		items, err = tx.ListCoAuthors(p.tenant, v.ID)
		return err
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list[model.CoAuthor]{Items: items})
}

// addCoAuthor declares an operator a co-author of a version, so that they
// may not approve it. There is deliberately no removal: un-declaring a
// co-author would let them approve their own work.
func (s *Server) addCoAuthor(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(model.RoleAuthor); err != nil {
		return err
	}
	var b struct {
		Operator string `json:"operator"`
	}
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	if e := validName("/operator", b.Operator, "operator"); e != nil {
		return invalid("invalid co-author", *e)
	}
	var c *model.CoAuthor
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		v, err := lockedVersion(tx, p, r)
		if err != nil {
			return err
		}
		if v.State != model.StateDraft && v.State != model.StateInReview {
			return conflict("version " + v.Label + " is " + string(v.State) + "; co-authors are declared before publication")
		}
		op, err := tx.GetOperatorByName(p.tenant, b.Operator)
		if errors.Is(err, store.ErrNotFound) {
			return invalid("invalid co-author", FieldError{Pointer: "/operator", Detail: "no operator " + b.Operator + " in this tenant"})
		} else if err != nil {
			return err
		}
		actor := p.tenant + "/" + op.Name
		if actor == v.Author {
			return invalid("invalid co-author", FieldError{Pointer: "/operator", Detail: actor + " is the author of this version"})
		}
		c = &model.CoAuthor{TenantID: p.tenant, VersionID: v.ID, Actor: actor, Source: model.CoAuthorDeclared, AddedBy: p.actor, AddedAt: now()}
		if err := tx.AddCoAuthor(c); errors.Is(err, store.ErrConflict) {
			return conflict(actor+" is already a co-author of "+v.APIName+"/"+v.Label, FieldError{Pointer: "/operator", Detail: "already a co-author"})
		} else if err != nil {
			return err
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "version.coauthor.add", "version", v.APIName+"/"+v.Label, audit.Digest(c)
		rec.Detail = jsonDetail(map[string]any{"co_author": actor, "source": c.Source})
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, c)
}

// noteEditor records the caller as a co-author of the draft they just
// changed, unless they are its author or already recorded. It runs in the
// update's transaction, so the edit and the co-authorship commit together;
// it returns the recorded actor ("" when nothing was recorded).
func noteEditor(tx store.Tx, p *principal, v *model.Version) (string, error) {
	if p.actor == v.Author {
		return "", nil
	}
	cos, err := tx.ListCoAuthors(v.TenantID, v.ID)
	if err != nil {
		return "", err
	}
	if slices.ContainsFunc(cos, func(c model.CoAuthor) bool { return c.Actor == p.actor }) {
		return "", nil
	}
	return p.actor, tx.AddCoAuthor(&model.CoAuthor{TenantID: v.TenantID, VersionID: v.ID, Actor: p.actor, Source: model.CoAuthorEdit, AddedBy: p.actor, AddedAt: now()})
}
