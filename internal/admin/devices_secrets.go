package admin

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// Device credentials other than certificates: DTLS pre-shared keys
// (this file) and device tokens (devices_tokens.go). Both are a
// DeviceCredential row (kind psk or token) that carries revocation, so the
// generic credential list and revoke routes see them too; the routes here
// add what is specific to each and check the kind.

// devCredRoutes lists the PSK and device-token routes.
func (s *Server) devCredRoutes() []route {
	return []route{
		{"GET", "/devices/{device}/psks", s.listPSKs},
		{"POST", "/devices/{device}/psks", s.createPSK},
		{"POST", "/devices/{device}/psks/{psk}/revoke", s.revokePSK},
		{"GET", "/devices/{device}/tokens", s.listDeviceTokens},
		{"POST", "/devices/{device}/tokens", s.createDeviceToken},
		{"POST", "/devices/{device}/tokens/{token}/revoke", s.revokeDeviceToken},
	}
}

// pskKeySize is the length of generated PSKs: 256 bits, the size of the
// TLS_PSK_WITH_AES_128_CCM_8 family's master secret input and well above
// the 128 bits RFC 7925 §4.2 asks for.
const pskKeySize = 32

// maxPSKIdentity bounds identities: RFC 4279 allows 2^16-1 bytes, but
// constrained devices keep them short and we never need more.
const maxPSKIdentity = 128

// pskView is a PSK as the API shows it: never the key.
type pskView struct {
	ID           string     `json:"id"`
	Device       string     `json:"device"`
	Identity     string     `json:"identity"`
	CreatedAt    time.Time  `json:"created_at"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	RevokeReason string     `json:"revoke_reason,omitempty"`
}

func newPSKView(p *model.DevicePSK, c *model.DeviceCredential) pskView {
	v := pskView{ID: p.ID, Device: p.DeviceID, Identity: p.Identity, CreatedAt: p.CreatedAt}
	if c != nil {
		v.RevokedAt, v.RevokeReason = c.RevokedAt, c.RevokeReason
	}
	return v
}

// validPSKIdentity: the tenant prefix makes identities unique across
// tenants, so the DTLS server finds the key before it knows the tenant;
// the alphabet is what fits in a device's config file without quoting.
func validPSKIdentity(tenant, id string) bool {
	rest, ok := strings.CutPrefix(id, tenant+"/")
	if !ok || rest == "" || len(id) > maxPSKIdentity {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._@:/-", c) >= 0) {
			return false
		}
	}
	return true
}

// activeDevice loads the device a new credential is for: unknown is 404,
// a device that cannot authenticate is 409 (a credential for it would be
// refused by the data plane anyway, and a decommissioned device is final).
func activeDevice(tx store.Tx, tenant, id string) (*model.Device, error) {
	d, err := tx.GetDevice(tenant, id)
	if err != nil {
		return nil, notFoundAs(err, "device")
	}
	if d.Status != model.DeviceActive {
		return nil, problem(http.StatusConflict, "device-not-active", "Device not active",
			"device "+d.ID+" is "+string(d.Status)+"; only active devices get new credentials")
	}
	return d, nil
}

// createPSK creates a DTLS PSK. The key is random, in this answer only,
// and stored sealed with the KEK: hashing is impossible because the DTLS
// server needs the raw key to derive the session keys (RFC 4279 §2).
func (s *Server) createPSK(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(deviceRoles...); err != nil {
		return err
	}
	var b struct {
		Identity string `json:"identity"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, maxBody, &b); err != nil {
			return err
		}
	}
	kek := s.devices().options().KEK
	if len(kek) == 0 {
		return errNoKEK
	}
	device := r.PathValue("device")
	if b.Identity == "" {
		rnd := make([]byte, 9)
		_, _ = rand.Read(rnd)
		b.Identity = p.tenant + "/" + device + "/" + base64.RawURLEncoding.EncodeToString(rnd)
	}
	if !validPSKIdentity(p.tenant, b.Identity) {
		return invalid("invalid PSK identity", FieldError{Pointer: "/identity",
			Detail: "\"" + p.tenant + "/\" followed by characters of A-Z a-z 0-9 . _ @ : / -, at most 128 in all"})
	}
	key := make([]byte, pskKeySize)
	_, _ = rand.Read(key)
	defer clear(key)
	sealed, err := pki.SealSecret(kek, pki.PurposePSK, p.tenant, key)
	if err != nil {
		return err
	}
	t := now()
	row := &model.DevicePSK{ID: newID(), TenantID: p.tenant, Identity: b.Identity, SealedKey: sealed, CreatedAt: t}
	cred := &model.DeviceCredential{ID: row.ID, TenantID: p.tenant, Kind: model.CredPSK, CreatedAt: t}
	err = s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		d, err := activeDevice(tx, p.tenant, device)
		if err != nil {
			return err
		}
		row.DeviceID, cred.DeviceID = d.ID, d.ID
		if err := tx.CreateDeviceCredential(cred); err != nil {
			return err
		}
		if err := tx.CreateDevicePSK(row); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return conflict("the PSK identity " + row.Identity + " is already in use")
			}
			return err
		}
		// The digest covers the public fields only; the key is in no
		// audit record, sealed or not.
		rec.Action, rec.ObjectType, rec.ObjectID = "psk.create", "device_credential", row.ID
		rec.AfterDigest = audit.Digest(newPSKView(row, cred))
		rec.Detail = jsonDetail(map[string]string{"device": d.ID, "identity": row.Identity})
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"psk": newPSKView(row, cred), "key": hex.EncodeToString(key)})
}

func (s *Server) listPSKs(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	var items []pskView
	err = s.st.View(r.Context(), func(tx store.Tx) error {
		d, err := tx.GetDevice(p.tenant, r.PathValue("device"))
		if err != nil {
			return notFoundAs(err, "device")
		}
		rows, err := tx.ListDevicePSKs(p.tenant, d.ID, pg)
		if err != nil {
			return err
		}
		items = make([]pskView, 0, len(rows))
		for i := range rows {
			c, err := tx.GetDeviceCredential(p.tenant, rows[i].ID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			items = append(items, newPSKView(&rows[i], c))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeList(w, items, pg, func(v pskView) string { return v.ID })
}

func (s *Server) revokePSK(w http.ResponseWriter, r *http.Request, p *principal) error {
	c, err := s.revokeKind(w, r, p, model.CredPSK, r.PathValue("psk"), "psk.revoke", "PSK")
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

// revokeKind revokes the credential id of kind kind of the path's device,
// audited as action. Revoking twice keeps the first time and reason. The
// data plane sees it with the snapshot every commit triggers, which also
// ends the sessions it admitted.
func (s *Server) revokeKind(w http.ResponseWriter, r *http.Request, p *principal, kind model.CredentialKind, id, action, what string) (*model.DeviceCredential, error) {
	if err := p.require(deviceRoles...); err != nil {
		return nil, err
	}
	var b struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, maxBody, &b); err != nil {
			return nil, err
		}
	}
	if b.Reason == "" {
		b.Reason = "unspecified"
	}
	if _, ok := revokeReasons[b.Reason]; !ok {
		return nil, invalid("invalid reason", FieldError{Pointer: "/reason", Detail: "one of unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn"})
	}
	var c *model.DeviceCredential
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		d, err := tx.GetDevice(p.tenant, r.PathValue("device"))
		if err != nil {
			return notFoundAs(err, "device")
		}
		c, err = tx.GetDeviceCredential(p.tenant, id)
		if err != nil || c.DeviceID != d.ID || c.Kind != kind {
			return notFound(what)
		}
		rec.BeforeDigest = audit.Digest(c)
		if c.RevokedAt == nil {
			t := now()
			c.RevokedAt, c.RevokeReason = &t, b.Reason
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = action, "device_credential", c.ID, audit.Digest(c)
		rec.Detail = jsonDetail(map[string]string{"device": d.ID, "reason": c.RevokeReason})
		return tx.UpdateDeviceCredential(c)
	})
	return c, err
}
