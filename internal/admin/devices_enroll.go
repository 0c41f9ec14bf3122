package admin

import (
	"bytes"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// enrollSecretLen is the length of every enrollment secret: the prefix and
// 43 base64url characters (32 random bytes).
const enrollSecretLen = len(enrollSecretPrefix) + 43

// EnrollHandler serves device enrollment (POST only): the device presents
// its one-time enrollment token as "Authorization: Bearer fge_..." and a
// PKCS#10 CSR as the body (PEM, DER, or base64 DER as EST sends it), and
// gets its client certificate. It is a separate handler, not an admin route,
// because devices hold no operator token; the composition root mounts it on
// the data-plane listener.
//
// Every decision about a known token is audited in the token's tenant, in
// the same transaction as its effect: a success marks the token used,
// records the credential and activates the device; a refusal (token used or
// expired, device not enrollable, bad CSR, CSR naming another device)
// records why and issues nothing. An unknown token is answered 401 without
// an audit record, since it names no tenant.
func (s *Server) EnrollHandler() http.Handler {
	return s.deviceEndpoint(`Bearer realm="fleetgate-enroll"`, s.enroll)
}

func enrollProblem(status int, kind, detail string) *Problem {
	titles := map[int]string{400: "Bad request", 401: "Unauthenticated", 403: "Forbidden", 409: "Conflict",
		413: "Request body too large", 422: "Validation failed", 503: "Service unavailable"}
	return problem(status, "enrollment/"+kind, titles[status], detail)
}

// enrollSecret extracts the enrollment secret from an Authorization header.
// Malformed secrets are refused here, before any store lookup.
func enrollSecret(authz string) (string, error) {
	scheme, secret, ok := strings.Cut(authz, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", enrollProblem(http.StatusUnauthorized, "no-token", "send the enrollment token as Authorization: Bearer fge_...")
	}
	secret = strings.TrimSpace(secret)
	if len(secret) != enrollSecretLen || !strings.HasPrefix(secret, enrollSecretPrefix) {
		return "", enrollProblem(http.StatusUnauthorized, "invalid-token", "the enrollment token is unknown")
	}
	return secret, nil
}

// enrollCSR parses the request body: PEM and DER go to pki.ParseCSR,
// anything else is taken as the base64 of EST (RFC 7030 §4.2.1). pki
// errors become precise problems.
func enrollCSR(body []byte) (*x509.CertificateRequest, error) {
	t := bytes.TrimSpace(body)
	if len(t) == 0 {
		return nil, enrollProblem(http.StatusBadRequest, pki.CodeMalformedCSR, "the body must be a PKCS#10 certificate request (PEM, DER or base64)")
	}
	var csr *x509.CertificateRequest
	var err error
	if t[0] == '-' || t[0] == 0x30 {
		csr, err = pki.ParseCSR(body)
	} else {
		csr, err = pki.DecodeESTRequest(body)
	}
	if err != nil {
		return nil, pkiProblem(err)
	}
	return csr, nil
}

// pkiProblem maps a pki error to a problem by its stable code; other errors
// pass through (and become a 500).
func pkiProblem(err error) error {
	var pe *pki.Error
	if !errors.As(err, &pe) {
		return err
	}
	status := http.StatusBadRequest
	switch pe.Code {
	case pki.CodeTooLarge:
		status = http.StatusRequestEntityTooLarge
	case pki.CodeUnsupportedKey, pki.CodeInvalidIdentity, pki.CodeInvalidValidity:
		status = http.StatusUnprocessableEntity
	case pki.CodeIdentityMismatch:
		status = http.StatusForbidden
	}
	return enrollProblem(status, pe.Code, pe.Error())
}

type enrollResult struct {
	cert          *x509.Certificate
	Tenant        string                  `json:"tenant"`
	Device        string                  `json:"device"`
	Credential    *model.DeviceCredential `json:"credential"`
	Certificate   string                  `json:"certificate"`
	CACertificate string                  `json:"ca_certificate"`
}

func (s *Server) enroll(w http.ResponseWriter, r *http.Request, reqID string) error {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return problem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", "enroll with POST")
	}
	secret, err := enrollSecret(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, pki.MaxESTRequestSize))
	if err != nil {
		return err
	}
	var refusal error
	var out *enrollResult
	err = s.st.Update(r.Context(), func(tx store.Tx) error {
		tok, err := tx.GetEnrollmentTokenByHash(HashToken(secret))
		if errors.Is(err, store.ErrNotFound) {
			return enrollProblem(http.StatusUnauthorized, "invalid-token", "the enrollment token is unknown")
		}
		if err != nil {
			return err
		}
		rec := &model.AuditRecord{TenantID: tok.TenantID, Actor: "device:" + tok.DeviceID, RequestID: reqID, ObjectType: "device", ObjectID: tok.DeviceID}
		// refuse commits an audit record of the refusal, and nothing else.
		refuse := func(e error) error {
			var p *Problem
			if !errors.As(e, &p) {
				return e
			}
			refusal = p
			rec.Action = "device.enroll.refused"
			rec.Detail = jsonDetail(map[string]string{"reason": strings.TrimPrefix(p.Type, ProblemBase), "detail": p.Detail, "token": tok.ID})
			return tx.AppendAudit(rec)
		}
		t := now()
		switch {
		case tok.UsedAt != nil:
			return refuse(enrollProblem(http.StatusUnauthorized, "token-used", "this enrollment token was already used"))
		case !t.Before(tok.ExpiresAt):
			return refuse(enrollProblem(http.StatusUnauthorized, "token-expired", "this enrollment token has expired"))
		}
		d, err := tx.GetDevice(tok.TenantID, tok.DeviceID)
		if errors.Is(err, store.ErrNotFound) {
			return refuse(enrollProblem(http.StatusForbidden, "device-status", "the device is no longer registered"))
		}
		if err != nil {
			return err
		}
		if d.Status != model.DevicePending && d.Status != model.DeviceActive {
			return refuse(enrollProblem(http.StatusForbidden, "device-status", "the device is "+string(d.Status)+" and may not enroll"))
		}
		csr, err := enrollCSR(body)
		if err != nil {
			return refuse(err)
		}
		ca, err := s.openCA(tx, tok.TenantID)
		if err != nil {
			return refuse(err)
		}
		cert, certPEM, err := ca.Issue(csr, pki.DeviceIdentity{Tenant: tok.TenantID, DeviceID: d.ID},
			pki.IssueOptions{Validity: s.devices().options().CertValidity, Now: t})
		if err != nil {
			return refuse(pkiProblem(err))
		}
		if err := tx.UseEnrollmentToken(tok.TenantID, tok.ID, t); err != nil {
			if errors.Is(err, store.ErrNotFound) { // a concurrent enrollment won
				return refuse(enrollProblem(http.StatusUnauthorized, "token-used", "this enrollment token was already used"))
			}
			return err
		}
		notAfter := cert.NotAfter.UTC()
		cred := &model.DeviceCredential{ID: newID(), TenantID: tok.TenantID, DeviceID: d.ID, Kind: model.CredCertificate,
			Fingerprint: pki.Fingerprint(cert), Serial: cert.SerialNumber.Text(16), NotAfter: &notAfter, CreatedAt: t}
		if err := tx.CreateDeviceCredential(cred); err != nil {
			return err
		}
		before := audit.Digest(d)
		d.Status, d.LastSeen, d.UpdatedAt = model.DeviceActive, &t, t
		if d.FirstSeen == nil {
			d.FirstSeen = &t
		}
		if err := tx.UpdateDevice(d); err != nil {
			return err
		}
		rec.Action, rec.BeforeDigest, rec.AfterDigest = "device.enroll", before, audit.Digest(d)
		rec.Detail = jsonDetail(map[string]any{"credential": cred.ID, "fingerprint": cred.Fingerprint, "serial": cred.Serial, "not_after": notAfter, "token": tok.ID})
		out = &enrollResult{cert: cert, Tenant: tok.TenantID, Device: d.ID, Credential: cred, Certificate: string(certPEM), CACertificate: string(ca.CertPEM)}
		return tx.AppendAudit(rec)
	})
	if err != nil {
		return err
	}
	if refusal != nil {
		return refusal
	}
	s.onChange()
	if estRequest(r) {
		return writeESTCert(w, http.StatusOK, out.cert)
	}
	if strings.Contains(r.Header.Get("Accept"), "application/x-pem-file") {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.WriteHeader(http.StatusCreated)
		_, err := io.WriteString(w, out.Certificate)
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}
