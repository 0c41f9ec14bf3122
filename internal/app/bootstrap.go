package app

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"

	"github.com/fleetgate/fleetgate/internal/admin"
	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// DefaultTenant is created on first start.
const DefaultTenant = "default"

// bootstrap creates, in an empty store, the default tenant, a system
// administrator and its token, with their audit records, in one
// transaction. It returns the generated secret ("" when the store was
// already bootstrapped or the secret was preset).
func bootstrap(ctx context.Context, st store.Store, preset string) (string, error) {
	if preset != "" && (!strings.HasPrefix(preset, "fgt_") || len(preset) < 24) {
		return "", errors.New("FLEETGATE_ADMIN_TOKEN must start with fgt_ and be at least 24 characters")
	}
	secret := ""
	err := st.Update(ctx, func(tx store.Tx) error {
		ts, err := tx.ListTenants(store.Page{Limit: 1})
		if err != nil || len(ts) > 0 {
			return err
		}
		now := audit.Now()
		t := &model.Tenant{ID: DefaultTenant, DisplayName: "Default tenant", CreatedAt: now, UpdatedAt: now}
		op := &model.Operator{ID: uuid.Must(uuid.NewV7()).String(), TenantID: t.ID, Name: "admin", Roles: []model.Role{model.RoleAdmin}, System: true, CreatedAt: now, UpdatedAt: now}
		secret = preset
		if secret == "" {
			secret = admin.NewSecret()
		}
		tok := &model.Token{ID: uuid.Must(uuid.NewV7()).String(), TenantID: t.ID, OperatorID: op.ID, Name: "bootstrap", Prefix: secret[:10], Hash: admin.HashToken(secret), CreatedAt: now}
		for _, step := range []struct {
			do          func() error
			action, typ string
			id          string
			obj         any
		}{
			{func() error { return tx.CreateTenant(t) }, "tenant.create", "tenant", t.ID, t},
			{func() error { return tx.CreateOperator(op) }, "operator.create", "operator", op.Name, op},
			{func() error { return tx.CreateToken(tok) }, "token.create", "token", tok.ID, tok},
		} {
			if err := step.do(); err != nil {
				return err
			}
			if err := tx.AppendAudit(&model.AuditRecord{TenantID: t.ID, Actor: "system/bootstrap", Action: step.action,
				ObjectType: step.typ, ObjectID: step.id, AfterDigest: audit.Digest(step.obj)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || preset != "" {
		return "", err
	}
	return secret, nil
}
