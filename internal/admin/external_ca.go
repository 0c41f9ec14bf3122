package admin

import (
	"crypto/x509"
	"errors"
	"net/http"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// externalCABody is an external CA as clients register it: one PEM CA
// certificate, the verification certificate that proves the tenant holds
// the CA's key, and the rule that reads device ids from its certificates.
type externalCABody struct {
	Name                    string `json:"name"`
	Certificate             string `json:"certificate"`
	VerificationCertificate string `json:"verification_certificate"`
	Mapping                 struct {
		Source  string `json:"source"`
		Pattern string `json:"pattern"`
	} `json:"mapping"`
}

// registrationCodeRoute is the path of the registration code; no external
// CA may take its last segment as name, or GET /ca/external/{name} could
// not reach it.
const registrationCodeRoute = "registration-code"

// externalCARegistrationCode answers the tenant's registration code: the
// common name of the verification certificate createExternalCA asks for.
// It is no secret (only the CA key holder can sign it), so every role that
// may list external CAs may read it.
func (s *Server) externalCARegistrationCode(w http.ResponseWriter, r *http.Request, p *principal) error {
	return writeJSON(w, http.StatusOK, map[string]string{"registration_code": pki.RegistrationCode(p.tenant)})
}

// createExternalCA registers a CA the tenant runs itself. Its client
// certificates then authenticate the registered, active devices the
// mapping rule names (policy.DeviceIndex); an unregistered id authenticates
// nobody. Only admins may do it: a CA is trust in bulk.
//
// The request must prove possession of the CA's private key with a
// verification certificate the CA signed for the tenant's registration
// code (pki.VerifyCAPossession). A CA certificate is public: without the
// proof a tenant could register another party's CA (a chip vendor's, or
// one another tenant uses) and have that party's devices authenticate into
// its own tenant, or make their ids ambiguous across tenants and refused.
// CAs registered before the proof was required are not re-checked.
func (s *Server) createExternalCA(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(caRoles...); err != nil {
		return err
	}
	var b externalCABody
	if err := decodeJSON(w, r, maxBody, &b); err != nil {
		return err
	}
	t := now()
	errs := collectErrs(validName("/name", b.Name, "name"))
	if b.Name == registrationCodeRoute {
		errs = append(errs, FieldError{Pointer: "/name", Detail: "name " + registrationCodeRoute + " is reserved"})
	}
	cert, err := pki.ParseExternalCA([]byte(b.Certificate), t)
	var pe *pki.Error
	if errors.As(err, &pe) {
		errs = append(errs, FieldError{Pointer: "/certificate", Detail: pe.Error()})
	} else if err != nil {
		return err
	}
	// The proof is checked against a CA that parsed; a refused CA leaves
	// nothing to verify it with.
	var proof *x509.Certificate
	if cert != nil {
		proof, err = pki.VerifyCAPossession(cert, []byte(b.VerificationCertificate), pki.RegistrationCode(p.tenant), t)
		if errors.As(err, &pe) {
			errs = append(errs, FieldError{Pointer: "/verification_certificate", Detail: pe.Error()})
		} else if err != nil {
			return err
		}
	}
	m, err := pki.ParseMapping(b.Mapping.Source, b.Mapping.Pattern)
	if errors.As(err, &pe) {
		errs = append(errs, FieldError{Pointer: "/mapping", Detail: pe.Error()})
	} else if err != nil {
		return err
	}
	if errs != nil {
		return problem(http.StatusUnprocessableEntity, "external-ca-invalid", "Validation failed", "invalid external CA", errs...)
	}
	ca := &model.ExternalCA{ID: newID(), TenantID: p.tenant, Name: b.Name, CertPEM: b.Certificate, Fingerprint: pki.Fingerprint(cert),
		Subject: cert.Subject.String(), NotAfter: cert.NotAfter.UTC(), Source: m.Source, Pattern: m.Pattern, CreatedAt: t}
	err = s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		if err := tx.CreateExternalCA(ca); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return conflict("an external CA with this name or certificate is already registered", FieldError{Pointer: "/name", Detail: "name or certificate already registered"})
			}
			return err
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "external_ca.create", "external_ca", ca.Name, audit.Digest(ca)
		rec.Detail = jsonDetail(map[string]any{"fingerprint": ca.Fingerprint, "subject": ca.Subject, "not_after": ca.NotAfter,
			"source": ca.Source, "pattern": ca.Pattern, "verification_fingerprint": pki.Fingerprint(proof)})
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, ca)
}

func (s *Server) listExternalCAs(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	var items []model.ExternalCA
	if err := s.st.View(r.Context(), func(tx store.Tx) (err error) { items, err = tx.ListExternalCAs(p.tenant, pg); return }); err != nil {
		return err
	}
	return writeList(w, items, pg, func(c model.ExternalCA) string { return c.Name })
}

func (s *Server) getExternalCA(w http.ResponseWriter, r *http.Request, p *principal) error {
	var c *model.ExternalCA
	if err := s.st.View(r.Context(), func(tx store.Tx) (err error) { c, err = tx.GetExternalCA(p.tenant, r.PathValue("name")); return }); err != nil {
		return notFoundAs(err, "external CA")
	}
	return writeJSON(w, http.StatusOK, c)
}

// deleteExternalCA withdraws the trust: the next snapshot no longer maps
// its certificates, and live sessions authenticated by them are closed.
func (s *Server) deleteExternalCA(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(caRoles...); err != nil {
		return err
	}
	err := s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		c, err := tx.GetExternalCA(p.tenant, r.PathValue("name"))
		if err != nil {
			return notFoundAs(err, "external CA")
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.BeforeDigest = "external_ca.delete", "external_ca", c.Name, audit.Digest(c)
		rec.Detail = jsonDetail(map[string]string{"fingerprint": c.Fingerprint})
		return tx.DeleteExternalCA(p.tenant, c.Name)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
