package admin

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// maxClaimRequest bounds a claim enrollment body: a JSON envelope around a
// CSR of at most pki.MaxCSRSize.
const maxClaimRequest = pki.MaxCSRSize + 4<<10

// claimRequest is what a device sends to enroll through a claim.
type claimRequest struct {
	DeviceID string `json:"device_id"`
	Model    string `json:"model"`
	Serial   string `json:"serial"`
	CSR      string `json:"csr"`

	csr *x509.CertificateRequest
}

// parseClaimRequest decodes and checks a claim enrollment body: a JSON
// object with exactly the members of claimRequest, a valid device id, a
// model, an optional serial and a PEM CSR that pki.ParseCSR accepts. Every
// refusal is a *Problem with a stable enrollment/ type.
func parseClaimRequest(body []byte) (*claimRequest, error) {
	if len(body) > maxClaimRequest {
		return nil, enrollProblem(http.StatusRequestEntityTooLarge, pki.CodeTooLarge, "the claim request exceeds 20 KiB")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req claimRequest
	if err := dec.Decode(&req); err != nil {
		return nil, enrollProblem(http.StatusBadRequest, "malformed-request", "the body must be a JSON object with device_id, model, serial and csr: "+err.Error())
	}
	if dec.More() {
		return nil, enrollProblem(http.StatusBadRequest, "malformed-request", "data after the JSON object")
	}
	var errs []FieldError
	if !model.ValidDeviceID(req.DeviceID) {
		errs = append(errs, FieldError{Pointer: "/device_id", Detail: "1-64 characters of A-Z a-z 0-9 . _ @ : -"})
	}
	if req.Model == "" || len(req.Model) > 128 {
		errs = append(errs, FieldError{Pointer: "/model", Detail: "1-128 characters"})
	}
	if len(req.Serial) > 128 {
		errs = append(errs, FieldError{Pointer: "/serial", Detail: "at most 128 characters"})
	}
	if req.CSR == "" {
		errs = append(errs, FieldError{Pointer: "/csr", Detail: "a PEM PKCS#10 certificate request"})
	}
	if errs != nil {
		p := enrollProblem(http.StatusUnprocessableEntity, "invalid-request", "invalid claim enrollment request")
		p.Errors = errs
		return nil, p
	}
	csr, err := pki.ParseCSR([]byte(req.CSR))
	if err != nil {
		return nil, pkiProblem(err)
	}
	req.csr = csr
	return &req, nil
}

// ClaimHandler serves claim (fleet) enrollment on the data plane: a device
// of a production batch presents the batch's claim, as "Authorization:
// Bearer fgc_..." or as its TLS client certificate, with a JSON body naming
// its id, model and serial and carrying its CSR; it is registered (active)
// and gets its own certificate.
//
// One transaction does it all, with the claim row locked: the claim must
// be unrevoked, unexpired and under its maximum, allow the model, and the
// device id must be free in the tenant; then the device, its credential,
// the incremented count and the audit record commit together. A refusal
// commits only its audit record. An unknown claim names no tenant and is
// answered 401 without an audit record.
func (s *Server) ClaimHandler() http.Handler {
	return s.deviceEndpoint(`Bearer realm="fleetgate-claim"`, s.claimEnroll)
}

// findClaim resolves the presented claim credential. Authorization wins
// over a TLS client certificate so that a device behind a TLS-terminating
// proxy can still use a token.
func findClaim(tx store.Tx, r *http.Request) (*model.Claim, error) {
	unknown := enrollProblem(http.StatusUnauthorized, "invalid-claim", "the claim is unknown")
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, secret, ok := strings.Cut(h, " ")
		secret = strings.TrimSpace(secret)
		if !ok || !strings.EqualFold(scheme, "Bearer") || len(secret) != len(claimSecretPrefix)+43 || !strings.HasPrefix(secret, claimSecretPrefix) {
			return nil, unknown
		}
		c, err := tx.GetClaimByHash(HashToken(secret))
		if errors.Is(err, store.ErrNotFound) {
			return nil, unknown
		}
		return c, err
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, enrollProblem(http.StatusUnauthorized, "no-claim", "present the claim token as Authorization: Bearer fgc_... or the claim certificate as TLS client certificate")
	}
	cert := r.TLS.PeerCertificates[0]
	c, err := tx.GetClaimByFingerprint(pki.Fingerprint(cert))
	if errors.Is(err, store.ErrNotFound) {
		return nil, unknown
	}
	if err != nil {
		return nil, err
	}
	// The fingerprint was recorded at issuance, so the certificate is the
	// one the tenant CA signed for this claim; the URN must agree.
	if id, err := pki.ClaimOf(cert); err != nil || id != (pki.ClaimIdentity{Tenant: c.TenantID, ClaimID: c.ID}) {
		return nil, unknown
	}
	return c, nil
}

func (s *Server) claimEnroll(w http.ResponseWriter, r *http.Request, reqID string) error {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return problem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", "enroll with POST")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxClaimRequest+1))
	if err != nil {
		return err
	}
	var refusal error
	var out *enrollResult
	err = s.st.Update(r.Context(), func(tx store.Tx) error {
		c, err := findClaim(tx, r)
		if err != nil {
			return err
		}
		// Serialize enrollments of this claim: the count read below cannot
		// change until this transaction ends.
		if c, err = tx.LockClaim(c.TenantID, c.ID); err != nil {
			return err
		}
		rec := &model.AuditRecord{TenantID: c.TenantID, Actor: "claim:" + c.Name, RequestID: reqID, ObjectType: "claim", ObjectID: c.Name}
		detail := map[string]any{"claim": c.Name}
		refuse := func(e error) error {
			var p *Problem
			if !errors.As(e, &p) {
				return e
			}
			refusal = p
			detail["reason"], detail["detail"] = strings.TrimPrefix(p.Type, ProblemBase), p.Detail
			rec.Action, rec.Detail = "claim.enroll.refused", jsonDetail(detail)
			return tx.AppendAudit(rec)
		}
		t := now()
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && c.Kind == model.ClaimCertificate && !t.Before(r.TLS.PeerCertificates[0].NotAfter) {
			return refuse(enrollProblem(http.StatusUnauthorized, "claim-expired", "the claim certificate has expired"))
		}
		switch c.Usable(t) {
		case "claim-revoked":
			return refuse(enrollProblem(http.StatusUnauthorized, "claim-revoked", "this claim was revoked"))
		case "claim-expired":
			return refuse(enrollProblem(http.StatusUnauthorized, "claim-expired", "this claim has expired"))
		case "claim-exhausted":
			return refuse(enrollProblem(http.StatusForbidden, "claim-exhausted", "this claim has enrolled its maximum number of devices"))
		}
		req, err := parseClaimRequest(body)
		if err != nil {
			return refuse(err)
		}
		detail["device"], detail["model"] = req.DeviceID, req.Model
		if !c.AllowsModel(req.Model) {
			return refuse(enrollProblem(http.StatusForbidden, "model-not-allowed", "this claim may not enroll devices of model "+req.Model))
		}
		if _, err := tx.GetDevice(c.TenantID, req.DeviceID); err == nil {
			return refuse(enrollProblem(http.StatusConflict, "device-taken", "device id "+req.DeviceID+" is already registered"))
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		ca, err := s.openCA(tx, c.TenantID)
		if err != nil {
			return refuse(err)
		}
		cert, certPEM, err := ca.Issue(req.csr, pki.DeviceIdentity{Tenant: c.TenantID, DeviceID: req.DeviceID},
			pki.IssueOptions{Validity: s.devices().options().CertValidity, Now: t})
		if err != nil {
			return refuse(pkiProblem(err))
		}
		d := &model.Device{ID: req.DeviceID, TenantID: c.TenantID, Model: req.Model, Serial: req.Serial, Status: model.DeviceActive,
			Attributes: map[string]string{"claim": c.Name}, FirstSeen: &t, LastSeen: &t, CreatedAt: t, UpdatedAt: t}
		created, err := tx.CreateDeviceIfAbsent(d)
		if err != nil {
			return err
		}
		if !created { // registered by a concurrent request since GetDevice
			return refuse(enrollProblem(http.StatusConflict, "device-taken", "device id "+req.DeviceID+" is already registered"))
		}
		if err := tx.UseClaim(c.TenantID, c.ID, t); err != nil {
			return err // cannot happen under the lock; roll everything back
		}
		notAfter := cert.NotAfter.UTC()
		cred := &model.DeviceCredential{ID: newID(), TenantID: c.TenantID, DeviceID: d.ID, Kind: model.CredCertificate,
			Fingerprint: pki.Fingerprint(cert), Serial: cert.SerialNumber.Text(16), NotAfter: &notAfter, CreatedAt: t}
		if err := tx.CreateDeviceCredential(cred); err != nil {
			return err
		}
		detail["credential"], detail["fingerprint"], detail["serial"], detail["used"] = cred.ID, cred.Fingerprint, cred.Serial, c.Used+1
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest, rec.Detail = "claim.enroll", "device", d.ID, audit.Digest(d), jsonDetail(detail)
		out = &enrollResult{cert: cert, Tenant: c.TenantID, Device: d.ID, Credential: cred, Certificate: string(certPEM), CACertificate: string(ca.CertPEM)}
		return tx.AppendAudit(rec)
	})
	if err != nil {
		return err
	}
	if refusal != nil {
		return refusal
	}
	s.onChange()
	return writeJSON(w, http.StatusCreated, out)
}
