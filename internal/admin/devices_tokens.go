package admin

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/identity/devtoken"
	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// Device tokens: short-lived JWTs signed with a per-tenant Ed25519 key,
// for devices that cannot do TLS client authentication. Each token's jti
// is the id of a DeviceCredential of kind token whose NotAfter is the
// token's exp, so a token can be listed and revoked like any credential,
// and the data plane accepts only jtis it knows (deny by default).

// tokenKeyOf returns the tenant's current signing key, creating it on the
// first mint (sealed with the KEK, audited in the same transaction). Two
// first mints racing on PostgreSQL may each create one: both keys are
// published and verify, the newer signs from then on.
func (s *Server) tokenKeyOf(tx store.Tx, p *principal, kek []byte) (kid string, key ed25519.PrivateKey, err error) {
	keys, err := tx.ListDeviceTokenKeys(p.tenant)
	if err != nil {
		return "", nil, err
	}
	if len(keys) > 0 {
		k := keys[0]
		seed, err := pki.OpenSecret(kek, pki.PurposeTokenKey, p.tenant, k.SealedKey)
		if err != nil || len(seed) != ed25519.SeedSize {
			return "", nil, errors.New("device-token signing key " + k.KID + " of tenant " + p.tenant + " cannot be opened: the KEK changed or the row was altered")
		}
		defer clear(seed)
		return k.KID, ed25519.NewKeyFromSeed(seed), nil
	}
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return "", nil, err
	}
	seed := priv.Seed()
	defer clear(seed)
	sealed, err := pki.SealSecret(kek, pki.PurposeTokenKey, p.tenant, seed)
	if err != nil {
		return "", nil, err
	}
	rnd := make([]byte, 12)
	_, _ = rand.Read(rnd)
	row := &model.DeviceTokenKey{TenantID: p.tenant, KID: base64.RawURLEncoding.EncodeToString(rnd), Alg: devtoken.Alg,
		PublicKey: pub, SealedKey: sealed, CreatedAt: now()}
	if err := tx.CreateDeviceTokenKey(row); err != nil {
		return "", nil, err
	}
	err = tx.AppendAudit(&model.AuditRecord{TenantID: p.tenant, Actor: p.actor, RequestID: p.reqID,
		Action: "device_token_key.create", ObjectType: "device_token_key", ObjectID: row.KID,
		AfterDigest: audit.Digest(devtoken.PublicJWK(row.KID, pub)), Detail: jsonDetail(map[string]string{"alg": row.Alg})})
	return row.KID, priv, err
}

// createDeviceToken mints a token for an active device. The token is in
// this answer only; the store keeps its jti and expiry, never the token.
func (s *Server) createDeviceToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(deviceRoles...); err != nil {
		return err
	}
	var b struct {
		TTL duration `json:"ttl"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, maxBody, &b); err != nil {
			return err
		}
	}
	if b.TTL == 0 {
		b.TTL = duration(devtoken.DefaultTTL)
	}
	if time.Duration(b.TTL) < time.Minute || time.Duration(b.TTL) > devtoken.MaxTTL {
		return invalid("invalid device token", FieldError{Pointer: "/ttl", Detail: "from 1m to 24h; default 1h"})
	}
	kek := s.devices().options().KEK
	if len(kek) == 0 {
		return errNoKEK
	}
	// Whole seconds: exp is a NumericDate and the credential's NotAfter
	// must be exactly the token's exp.
	iat := now().Truncate(time.Second)
	exp := iat.Add(time.Duration(b.TTL).Truncate(time.Second))
	cred := &model.DeviceCredential{ID: newID(), TenantID: p.tenant, Kind: model.CredToken, NotAfter: &exp, CreatedAt: now()}
	var token string
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		d, err := activeDevice(tx, p.tenant, r.PathValue("device"))
		if err != nil {
			return err
		}
		kid, key, err := s.tokenKeyOf(tx, p, kek)
		if err != nil {
			return err
		}
		cred.DeviceID = d.ID
		token, err = devtoken.Sign(key, kid, &devtoken.Claims{Issuer: devtoken.Issuer, Subject: d.ID, Tenant: p.tenant, ID: cred.ID,
			IssuedAt: iat.Unix(), NotBefore: iat.Unix(), Expiry: exp.Unix()})
		if err != nil {
			return err
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "device_token.create", "device_credential", cred.ID, audit.Digest(cred)
		rec.Detail = jsonDetail(map[string]any{"device": d.ID, "kid": kid, "expires_at": exp})
		return tx.CreateDeviceCredential(cred)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"credential": cred, "token": token, "expires_at": exp})
}

// listDeviceTokens lists a device's token credentials (jti, expiry,
// revocation), newest last. The credential list is filtered by kind page
// by page, so a device with many certificates still pages correctly.
func (s *Server) listDeviceTokens(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	items := []model.DeviceCredential{}
	err = s.st.View(r.Context(), func(tx store.Tx) error {
		d, err := tx.GetDevice(p.tenant, r.PathValue("device"))
		if err != nil {
			return notFoundAs(err, "device")
		}
		cur := store.Page{Limit: 1000, After: pg.After}
		for len(items) < pg.Limit {
			batch, err := tx.ListDeviceCredentials(p.tenant, d.ID, cur)
			if err != nil {
				return err
			}
			for _, c := range batch {
				if c.Kind == model.CredToken && len(items) < pg.Limit {
					items = append(items, c)
				}
			}
			if len(batch) < cur.Limit {
				break
			}
			cur.After = batch[len(batch)-1].ID
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeList(w, items, pg, func(c model.DeviceCredential) string { return c.ID })
}

func (s *Server) revokeDeviceToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	c, err := s.revokeKind(w, r, p, model.CredToken, r.PathValue("token"), "device_token.revoke", "device token")
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

// DeviceJWKSHandler serves GET /.well-known/fleetgate/{tenant}/jwks.json on
// the data plane: the public keys of the tenant's device tokens, for
// relying parties outside Fleetgate (a backend that receives a device's
// token). It is public, like the CRL; an unknown tenant gets an empty set,
// so the endpoint does not reveal which tenants exist.
func (s *Server) DeviceJWKSHandler() http.Handler {
	return s.estWrap(func(w http.ResponseWriter, r *http.Request, _ string) error {
		var keys []model.DeviceTokenKey
		err := s.st.View(r.Context(), func(tx store.Tx) (err error) {
			keys, err = tx.ListDeviceTokenKeys(r.PathValue("tenant"))
			return err
		})
		if err != nil {
			return err
		}
		set := struct {
			Keys []devtoken.JWK `json:"keys"`
		}{Keys: []devtoken.JWK{}}
		for _, k := range keys {
			if len(k.PublicKey) == ed25519.PublicKeySize {
				set.Keys = append(set.Keys, devtoken.PublicJWK(k.KID, k.PublicKey))
			}
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.WriteHeader(http.StatusOK)
		return json.NewEncoder(w).Encode(set)
	})
}
