package admin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// Claim limits. A claim is a shared secret of a whole production batch, so
// it is bounded in count and in time: at most a year, and a batch size an
// operator states explicitly.
const (
	maxClaimDevices  = 1_000_000
	maxClaimLifetime = 366 * 24 * time.Hour
	maxClaimModels   = 64
	// claimSecretPrefix marks claim token secrets: neither an enrollment
	// token (fge_), an API key (fgk_) nor an operator token (fgt_), so a
	// claim token is refused by every other credential check by shape.
	claimSecretPrefix = "fgc_"
)

// claimRoutes lists the claim (fleet provisioning) and external CA admin
// routes. The device-facing claim enrollment is ClaimHandler, served on
// the data plane.
func (s *Server) claimRoutes() []route {
	return []route{
		{"GET", "/claims", s.listClaims},
		{"POST", "/claims", s.createClaim},
		{"GET", "/claims/{claim}", s.getClaim},
		{"POST", "/claims/{claim}/revoke", s.revokeClaim},
		{"GET", "/ca/external", s.listExternalCAs},
		{"GET", "/ca/external/" + registrationCodeRoute, s.externalCARegistrationCode},
		{"POST", "/ca/external", s.createExternalCA},
		{"GET", "/ca/external/{name}", s.getExternalCA},
		{"DELETE", "/ca/external/{name}", s.deleteExternalCA},
	}
}

type claimBody struct {
	Name       string    `json:"name"`
	Models     []string  `json:"models"`
	MaxDevices int       `json:"max_devices"`
	ExpiresIn  duration  `json:"expires_in"`
	ExpiresAt  time.Time `json:"expires_at"`
	Kind       string    `json:"kind"`
	CSR        string    `json:"csr"`
}

// validate checks b and returns the expiry it asks for.
func (b *claimBody) validate(at time.Time) (time.Time, []FieldError) {
	errs := collectErrs(validName("/name", b.Name, "claim name"))
	if len(b.Models) == 0 || len(b.Models) > maxClaimModels {
		errs = append(errs, FieldError{Pointer: "/models", Detail: "list 1 to 64 device models the claim may enroll"})
	}
	for i, m := range b.Models {
		if m == "" || len(m) > 128 {
			errs = append(errs, FieldError{Pointer: "/models/" + itoa(i), Detail: "1-128 characters"})
		} else if slices.Index(b.Models, m) != i {
			errs = append(errs, FieldError{Pointer: "/models/" + itoa(i), Detail: "listed twice"})
		}
	}
	if b.MaxDevices < 1 || b.MaxDevices > maxClaimDevices {
		errs = append(errs, FieldError{Pointer: "/max_devices", Detail: "from 1 to 1000000"})
	}
	var exp time.Time
	switch {
	case b.ExpiresIn != 0 && !b.ExpiresAt.IsZero():
		errs = append(errs, FieldError{Pointer: "/expires_at", Detail: "give expires_in or expires_at, not both"})
	case b.ExpiresIn != 0:
		exp = at.Add(time.Duration(b.ExpiresIn))
	case !b.ExpiresAt.IsZero():
		exp = b.ExpiresAt.UTC()
	default:
		errs = append(errs, FieldError{Pointer: "/expires_in", Detail: "a claim needs an expiry: expires_in (e.g. 720h) or expires_at"})
	}
	if !exp.IsZero() && (exp.Sub(at) < time.Minute || exp.Sub(at) > maxClaimLifetime) {
		errs = append(errs, FieldError{Pointer: "/expires_in", Detail: "the claim must expire between 1 minute and 366 days from now"})
	}
	switch model.ClaimKind(b.Kind) {
	case "":
		b.Kind = string(model.ClaimToken)
		fallthrough
	case model.ClaimToken:
		if b.CSR != "" {
			errs = append(errs, FieldError{Pointer: "/csr", Detail: "a CSR is only for kind certificate"})
		}
	case model.ClaimCertificate:
	default:
		errs = append(errs, FieldError{Pointer: "/kind", Detail: "token or certificate"})
	}
	return exp, errs
}

// claimCreated is the answer to POST /claims: the claim and, once, its
// secret (token) or certificate and private key (when the server made the
// key). Nothing secret is kept by the server.
type claimCreated struct {
	Claim         *model.Claim `json:"claim"`
	Secret        string       `json:"secret,omitempty"`
	Certificate   string       `json:"certificate,omitempty"`
	PrivateKey    string       `json:"private_key,omitempty"`
	CACertificate string       `json:"ca_certificate,omitempty"`
}

func newClaimSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return claimSecretPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// createClaim makes a claim. A token claim gets a random secret (stored as
// its SHA-256); a certificate claim gets a certificate from the tenant CA
// with a claim-only identity, for the submitted CSR or for a P-256 key made
// here and returned once. The claim certificate expires with the claim.
func (s *Server) createClaim(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(deviceRoles...); err != nil {
		return err
	}
	var b claimBody
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	t := now()
	exp, errs := b.validate(t)
	var csr *x509.CertificateRequest
	if b.CSR != "" && len(errs) == 0 {
		var err error
		if csr, err = pki.ParseCSR([]byte(b.CSR)); err != nil {
			var pe *pki.Error
			errors.As(err, &pe)
			errs = append(errs, FieldError{Pointer: "/csr", Detail: pe.Error()})
		}
	}
	if errs != nil {
		return invalid("invalid claim", errs...)
	}
	c := &model.Claim{ID: newID(), TenantID: p.tenant, Name: b.Name, Models: b.Models, MaxDevices: b.MaxDevices, ExpiresAt: exp,
		Kind: model.ClaimKind(b.Kind), CreatedAt: t, UpdatedAt: t}
	out := &claimCreated{Claim: c}
	var keyPEM []byte
	if c.Kind == model.ClaimToken {
		out.Secret = newClaimSecret()
		c.Hash = HashToken(out.Secret)
	} else if csr == nil {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		if err != nil {
			return err
		}
		if csr, err = x509.ParseCertificateRequest(der); err != nil {
			return err
		}
		pk, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})
	}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		if c.Kind == model.ClaimCertificate {
			ca, err := s.openCA(tx, p.tenant)
			if err != nil {
				return err
			}
			cert, certPEM, err := ca.IssueClaim(csr, pki.ClaimIdentity{Tenant: p.tenant, ClaimID: c.ID},
				pki.IssueOptions{Now: t, Validity: exp.Sub(t) + 5*time.Minute})
			if err != nil {
				var pe *pki.Error
				if errors.As(err, &pe) {
					return invalid("invalid claim", FieldError{Pointer: "/csr", Detail: pe.Error()})
				}
				return err
			}
			c.Fingerprint, c.Serial = pki.Fingerprint(cert), cert.SerialNumber.Text(16)
			out.Certificate, out.CACertificate, out.PrivateKey = string(certPEM), string(ca.CertPEM), string(keyPEM)
		}
		if err := tx.CreateClaim(c); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return conflict("claim "+c.Name+" already exists", FieldError{Pointer: "/name", Detail: "already exists"})
			}
			return err
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "claim.create", "claim", c.Name, audit.Digest(c)
		rec.Detail = jsonDetail(map[string]any{"kind": c.Kind, "models": c.Models, "max_devices": c.MaxDevices, "expires_at": c.ExpiresAt,
			"fingerprint": c.Fingerprint})
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listClaims(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	var items []model.Claim
	if err := s.st.View(r.Context(), func(tx store.Tx) (err error) { items, err = tx.ListClaims(p.tenant, pg); return }); err != nil {
		return err
	}
	return writeList(w, items, pg, func(c model.Claim) string { return c.Name })
}

func (s *Server) getClaim(w http.ResponseWriter, r *http.Request, p *principal) error {
	var c *model.Claim
	if err := s.st.View(r.Context(), func(tx store.Tx) (err error) { c, err = tx.GetClaim(p.tenant, r.PathValue("claim")); return }); err != nil {
		return notFoundAs(err, "claim")
	}
	return writeJSON(w, http.StatusOK, c)
}

// revokeClaim ends a claim for good (a batch shipped, a secret leaked).
// Devices it enrolled keep their own certificates: revoke those one by
// one if the claim was abused. Revoking twice keeps the first time.
func (s *Server) revokeClaim(w http.ResponseWriter, r *http.Request, p *principal) error {
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
	if errs := collectErrs(maxLen("/reason", b.Reason, 1000)); errs != nil {
		return invalid("invalid reason", errs...)
	}
	var c *model.Claim
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		var err error
		if c, err = tx.GetClaim(p.tenant, r.PathValue("claim")); err != nil {
			return notFoundAs(err, "claim")
		}
		rec.BeforeDigest = audit.Digest(c)
		if c.RevokedAt == nil {
			t := now()
			c.RevokedAt, c.RevokeReason, c.UpdatedAt = &t, b.Reason, t
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "claim.revoke", "claim", c.Name, audit.Digest(c)
		rec.Detail = jsonDetail(map[string]any{"reason": c.RevokeReason, "used": c.Used})
		return tx.UpdateClaim(c)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}
