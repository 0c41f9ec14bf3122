package admin

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"math/big"
	"net/http"
	"time"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// caKeyTypes are the CA key types an operator may choose. RSA below 2048
// bits is not offered at all (NIST SP 800-57: under 112-bit security).
var caKeyTypes = []pki.KeyType{pki.KeyECDSAP256, pki.KeyEd25519, pki.KeyRSA2048, pki.KeyRSA3072, pki.KeyRSA4096}

// crlValidity is the nextUpdate interval of served CRLs. CRLs are signed on
// request, so relying parties that refetch daily see revocations the same
// day; Fleetgate's own listeners do not use the CRL at all.
const crlValidity = 24 * time.Hour

var errNoKEK = problem(http.StatusServiceUnavailable, "device-ca-disabled", "Device CA disabled",
	"no key-encryption key is configured, so CA keys cannot be sealed or opened")

func noCA() *Problem {
	return problem(http.StatusConflict, "no-ca", "No CA", "the tenant has no device CA yet; create it with POST /ca")
}

// openCA loads and unseals the tenant CA. Unseal failures are logged and
// answered as a 500 that reveals nothing: they mean the KEK changed or the
// row was tampered with, which an operator must look into.
func (s *Server) openCA(tx store.Tx, tenant string) (*pki.CA, error) {
	kek := s.devices().options().KEK
	if len(kek) == 0 {
		return nil, errNoKEK
	}
	row, err := tx.GetTenantCA(tenant)
	if errors.Is(err, store.ErrNotFound) {
		return nil, noCA()
	}
	if err != nil {
		return nil, err
	}
	return pki.OpenCA(row.CertPEM, row.SealedKey, kek, tenant)
}

type caView struct {
	*model.TenantCA
	Certificate string    `json:"certificate"`
	NotAfter    time.Time `json:"not_after"`
}

func (s *Server) createCA(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(caRoles...); err != nil {
		return err
	}
	var b struct {
		KeyType  string   `json:"key_type"`
		Validity duration `json:"validity"`
	}
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	kt := pki.KeyType(b.KeyType)
	if kt == "" {
		kt = pki.KeyECDSAP256
	}
	var errs []FieldError
	if !containsKT(kt) {
		errs = append(errs, FieldError{Pointer: "/key_type", Detail: "one of ecdsa-p256, ed25519, rsa-2048, rsa-3072, rsa-4096"})
	}
	if b.Validity < 0 || (b.Validity > 0 && time.Duration(b.Validity) < 24*time.Hour) || time.Duration(b.Validity) > 30*365*24*time.Hour {
		errs = append(errs, FieldError{Pointer: "/validity", Detail: "from 24h to 30 years; default 10 years"})
	}
	if errs != nil {
		return invalid("invalid CA request", errs...)
	}
	kek := s.devices().options().KEK
	if len(kek) == 0 {
		return errNoKEK
	}
	ca, err := pki.NewCA(p.tenant, kt, time.Duration(b.Validity), now())
	if err != nil {
		return err
	}
	sealed, err := ca.SealKey(kek)
	if err != nil {
		return err
	}
	row := &model.TenantCA{TenantID: p.tenant, KeyType: string(kt), CertPEM: ca.CertPEM, SealedKey: sealed, CreatedAt: now()}
	err = s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		if err := tx.CreateTenantCA(row); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return conflict("the tenant already has a device CA")
			}
			return err
		}
		// The digest covers the public certificate only: audit records
		// are readable by auditors and must carry nothing secret.
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "ca.create", "ca", p.tenant, audit.Digest(string(ca.CertPEM))
		rec.Detail = jsonDetail(map[string]any{"key_type": kt, "fingerprint": pki.Fingerprint(ca.Cert), "not_after": ca.Cert.NotAfter})
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, caView{TenantCA: row, Certificate: string(ca.CertPEM), NotAfter: ca.Cert.NotAfter})
}

func containsKT(kt pki.KeyType) bool {
	for _, k := range caKeyTypes {
		if k == kt {
			return true
		}
	}
	return false
}

// getCA serves the CA certificate as PEM: it is public, and PEM is what
// device provisioning scripts and TLS configurations consume directly.
func (s *Server) getCA(w http.ResponseWriter, r *http.Request, p *principal) error {
	var row *model.TenantCA
	err := s.st.View(r.Context(), func(tx store.Tx) (err error) { row, err = tx.GetTenantCA(p.tenant); return })
	if errors.Is(err, store.ErrNotFound) {
		return notFound("device CA")
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, err = w.Write(row.CertPEM)
	return err
}

// getCRL signs a CRL of the tenant's revoked, unexpired certificates. The
// cRLNumber is the signing time in microseconds: it strictly increases
// across CRLs as RFC 5280 §5.2.3 requires without a counter to store.
func (s *Server) getCRL(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.writeCRL(w, r, p.tenant)
}

// writeCRL serves tenant's CRL: every revoked certificate not yet expired.
// The admin route and the public data-plane route (for relying parties
// outside Fleetgate) share it.
func (s *Server) writeCRL(w http.ResponseWriter, r *http.Request, tenant string) error {
	var der []byte
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		ca, err := s.openCA(tx, tenant)
		if err != nil {
			return err
		}
		creds, err := tx.ListDeviceCredentials(tenant, "", store.Page{Limit: -1})
		if err != nil {
			return err
		}
		t := now()
		var revoked []pki.Revoked
		for _, c := range creds {
			if c.Kind != model.CredCertificate || c.RevokedAt == nil || (c.NotAfter != nil && c.NotAfter.Before(t)) {
				continue
			}
			serial, ok := new(big.Int).SetString(c.Serial, 16)
			if !ok || serial.Sign() <= 0 {
				continue
			}
			revoked = append(revoked, pki.Revoked{Serial: serial, At: *c.RevokedAt, Reason: revokeReasons[c.RevokeReason]})
		}
		der, err = ca.CRL(revoked, big.NewInt(time.Now().UnixMicro()), t, crlValidity)
		return err
	})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write(der)
	return err
}

// revokeReasons maps the reasons an operator may give to RFC 5280 §5.3.1
// CRLReason codes. certificateHold (6) is left out: a hold is a suspension,
// which is a device status here, not a certificate state.
var revokeReasons = map[string]int{
	"unspecified":          0,
	"keyCompromise":        1,
	"affiliationChanged":   3,
	"superseded":           4,
	"cessationOfOperation": 5,
	"privilegeWithdrawn":   9,
}

func (s *Server) listDeviceCredentials(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	var items []model.DeviceCredential
	err = s.st.View(r.Context(), func(tx store.Tx) error {
		d, err := tx.GetDevice(p.tenant, r.PathValue("device"))
		if err != nil {
			return notFoundAs(err, "device")
		}
		items, err = tx.ListDeviceCredentials(p.tenant, d.ID, pg)
		return err
	})
	if err != nil {
		return err
	}
	return writeList(w, items, pg, func(c model.DeviceCredential) string { return c.ID })
}

// revokeDeviceCredential revokes one credential. The change reaches the data
// plane through the snapshot rebuild that every commit triggers; revoking
// twice keeps the first time and reason.
func (s *Server) revokeDeviceCredential(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(deviceRoles...); err != nil {
		return err
	}
	var b struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, maxBody, &b); err != nil {
			return err
		}
	}
	if b.Reason == "" {
		b.Reason = "unspecified"
	}
	if _, ok := revokeReasons[b.Reason]; !ok {
		return invalid("invalid reason", FieldError{Pointer: "/reason", Detail: "one of unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn"})
	}
	var c *model.DeviceCredential
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		d, err := tx.GetDevice(p.tenant, r.PathValue("device"))
		if err != nil {
			return notFoundAs(err, "device")
		}
		c, err = tx.GetDeviceCredential(p.tenant, r.PathValue("credential"))
		if err != nil || c.DeviceID != d.ID {
			return notFound("credential")
		}
		rec.BeforeDigest = audit.Digest(c)
		if c.RevokedAt == nil {
			t := now()
			c.RevokedAt, c.RevokeReason = &t, b.Reason
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "credential.revoke", "device_credential", c.ID, audit.Digest(c)
		rec.Detail = jsonDetail(map[string]string{"device": d.ID, "reason": c.RevokeReason})
		return tx.UpdateDeviceCredential(c)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

// enrollSecretPrefix marks enrollment token secrets, so that secret
// scanners recognise them and they are not confused with operator tokens.
const enrollSecretPrefix = "fge_"

func newEnrollSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return enrollSecretPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// createEnrollmentToken issues a one-time enrollment secret for a device.
// The secret is in this answer only; the store keeps its SHA-256.
func (s *Server) createEnrollmentToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(deviceRoles...); err != nil {
		return err
	}
	var b struct {
		ExpiresIn duration `json:"expires_in"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, maxBody, &b); err != nil {
			return err
		}
	}
	if b.ExpiresIn == 0 {
		b.ExpiresIn = duration(24 * time.Hour)
	}
	if b.ExpiresIn < duration(time.Minute) || time.Duration(b.ExpiresIn) > 30*24*time.Hour {
		return invalid("invalid enrollment token", FieldError{Pointer: "/expires_in", Detail: "from 1m to 720h; default 24h"})
	}
	secret := newEnrollSecret()
	tok := &model.EnrollmentToken{ID: newID(), TenantID: p.tenant, Hash: HashToken(secret), ExpiresAt: now().Add(time.Duration(b.ExpiresIn)), CreatedAt: now()}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		d, err := tx.GetDevice(p.tenant, r.PathValue("device"))
		if err != nil {
			return notFoundAs(err, "device")
		}
		if d.Status == model.DeviceDecommissioned {
			return conflict("device " + d.ID + " is decommissioned")
		}
		tok.DeviceID = d.ID
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "enrollment_token.create", "enrollment_token", tok.ID, audit.Digest(tok)
		rec.Detail = jsonDetail(map[string]any{"device": d.ID, "expires_at": tok.ExpiresAt})
		return tx.CreateEnrollmentToken(tok)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "secret": secret})
}
