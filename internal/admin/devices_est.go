package admin

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

type estKey struct{}

// estRequest reports whether the enrollment arrived through EST, which
// answers with a base64 PKCS#7 "certs-only" instead of JSON.
func estRequest(r *http.Request) bool { return r.Context().Value(estKey{}) != nil }

// writeESTCert answers with RFC 7030 §4.2.3: application/pkcs7-mime,
// smime-type=certs-only, base64 body.
func writeESTCert(w http.ResponseWriter, status int, cert *x509.Certificate) error {
	b, err := pki.EncodeESTResponse(cert)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/pkcs7-mime; smime-type=certs-only")
	w.Header().Set("Content-Transfer-Encoding", "base64")
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}

// ESTHandler serves EST (RFC 7030) on the data plane:
//
//	GET  /.well-known/est/{tenant}/cacerts   the tenant CA (§4.1), PKCS#7
//	POST /.well-known/est/simpleenroll       first certificate (§4.2.1); the
//	     one-time enrollment token is the HTTP Basic password (or a Bearer)
//	POST /.well-known/est/simplereenroll     renewal (§4.2.2), authenticated
//	     by the device's current, live certificate over TLS
//
// Requests and refusals are audited exactly as in EnrollHandler.
func (s *Server) ESTHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/est/{tenant}/cacerts", s.estWrap(s.estCACerts))
	mux.HandleFunc("POST /.well-known/est/simpleenroll", s.estWrap(func(w http.ResponseWriter, r *http.Request, reqID string) error {
		if _, pass, ok := r.BasicAuth(); ok {
			r.Header.Set("Authorization", "Bearer "+pass)
		}
		return s.enroll(w, r.WithContext(context.WithValue(r.Context(), estKey{}, true)), reqID)
	}))
	mux.HandleFunc("POST /.well-known/est/simplereenroll", s.estWrap(s.estReenroll))
	return mux
}

// RevocationHandler serves revocation status to relying parties outside
// Fleetgate, without credentials (the answers are signed by the tenant CA):
//
//	GET  /.well-known/fleetgate/{tenant}/crl    DER CRL (RFC 5280)
//	POST /.well-known/fleetgate/{tenant}/ocsp   OCSP (RFC 6960), DER request body
func (s *Server) RevocationHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/fleetgate/{tenant}/crl", s.estWrap(func(w http.ResponseWriter, r *http.Request, _ string) error {
		return s.writeCRL(w, r, r.PathValue("tenant"))
	}))
	mux.HandleFunc("POST /.well-known/fleetgate/{tenant}/ocsp", s.estWrap(s.ocsp))
	return mux
}

func (s *Server) ocsp(w http.ResponseWriter, r *http.Request, _ string) error {
	tenant := r.PathValue("tenant")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, pki.MaxOCSPRequestSize))
	if err != nil {
		return err
	}
	var resp []byte
	err = s.st.View(r.Context(), func(tx store.Tx) error {
		ca, err := s.openCA(tx, tenant)
		if err != nil {
			return err
		}
		creds, err := tx.ListDeviceCredentials(tenant, "", store.Page{Limit: -1})
		if err != nil {
			return err
		}
		// The responder signs an answer even to malformed requests (an
		// OCSP malformedRequest status), so the error is only for I/O.
		resp, err = ca.OCSPResponse(body, func(serial *big.Int) (pki.OCSPStatus, time.Time, int) {
			hexSerial := serial.Text(16)
			for _, c := range creds {
				if c.Kind != model.CredCertificate || c.Serial != hexSerial {
					continue
				}
				if c.RevokedAt != nil {
					return pki.OCSPRevoked, *c.RevokedAt, revokeReasons[c.RevokeReason]
				}
				return pki.OCSPGood, time.Time{}, 0
			}
			return pki.OCSPUnknown, time.Time{}, 0
		}, now())
		if resp != nil {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write(resp)
	return err
}

func (s *Server) estWrap(h func(w http.ResponseWriter, r *http.Request, reqID string) error) http.HandlerFunc {
	return s.deviceEndpoint(`Basic realm="fleetgate-est"`, h)
}

// deviceEndpoint adapts a data-plane endpoint the admin package serves to
// devices (enrollment, claims, EST): a request id, problem+json answers
// and, on 401, the challenge of the endpoint's scheme.
func (s *Server) deviceEndpoint(challenge string, h func(w http.ResponseWriter, r *http.Request, reqID string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		reqID := r.Header.Get("X-Request-Id")
		if !reqIDRe.MatchString(reqID) {
			reqID = uuid.NewString()
		}
		w.Header().Set("X-Request-Id", reqID)
		if err := h(w, r, reqID); err != nil {
			pr := toProblem(err, s.log, reqID)
			pr.RequestID, pr.Instance = reqID, r.URL.Path
			if pr.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", challenge)
			}
			writeProblem(w, pr)
		}
	}
}

func (s *Server) estCACerts(w http.ResponseWriter, r *http.Request, _ string) error {
	var body []byte
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		ca, err := s.openCA(tx, r.PathValue("tenant"))
		if err != nil {
			return err
		}
		body, err = ca.CACertsPKCS7()
		return err
	})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/pkcs7-mime")
	w.Header().Set("Content-Transfer-Encoding", "base64")
	_, err = w.Write(body)
	return err
}

// estReenroll renews a device certificate. The TLS layer proved the client
// holds the key of its certificate; the certificate must be one Fleetgate
// issued (its fingerprint recorded as a live credential) for an active
// device, and the new certificate carries the same identity.
func (s *Server) estReenroll(w http.ResponseWriter, r *http.Request, reqID string) error {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return enrollProblem(http.StatusUnauthorized, "no-certificate", "re-enrollment needs the current device certificate over TLS")
	}
	cur := r.TLS.PeerCertificates[0]
	id, err := pki.IdentityOf(cur)
	if err != nil {
		return enrollProblem(http.StatusUnauthorized, "unknown-certificate", "the certificate is not a Fleetgate device certificate")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, pki.MaxESTRequestSize))
	if err != nil {
		return err
	}
	var refusal error
	var issued *x509.Certificate
	fp := pki.Fingerprint(cur)
	err = s.st.Update(r.Context(), func(tx store.Tx) error {
		t := now()
		creds, err := tx.ListDeviceCredentials(id.Tenant, id.DeviceID, store.Page{Limit: -1})
		if err != nil {
			return err
		}
		var live *model.DeviceCredential
		for i := range creds {
			if creds[i].Fingerprint == fp && creds[i].Live(t) {
				live = &creds[i]
			}
		}
		if live == nil {
			return enrollProblem(http.StatusUnauthorized, "unknown-certificate", "the certificate is unknown, revoked or expired")
		}
		rec := &model.AuditRecord{TenantID: id.Tenant, Actor: "device:" + id.DeviceID, RequestID: reqID, ObjectType: "device", ObjectID: id.DeviceID}
		refuse := func(e error) error {
			var p *Problem
			if !errors.As(e, &p) {
				return e
			}
			refusal = p
			rec.Action = "device.reenroll.refused"
			rec.Detail = jsonDetail(map[string]string{"reason": strings.TrimPrefix(p.Type, ProblemBase), "detail": p.Detail, "credential": live.ID})
			return tx.AppendAudit(rec)
		}
		d, err := tx.GetDevice(id.Tenant, id.DeviceID)
		if err != nil {
			return refuse(enrollProblem(http.StatusForbidden, "device-status", "the device is no longer registered"))
		}
		if d.Status != model.DeviceActive {
			return refuse(enrollProblem(http.StatusForbidden, "device-status", "the device is "+string(d.Status)+" and may not renew"))
		}
		csr, err := enrollCSR(body)
		if err != nil {
			return refuse(err)
		}
		ca, err := s.openCA(tx, id.Tenant)
		if err != nil {
			return refuse(err)
		}
		cert, _, err := ca.Issue(csr, id, pki.IssueOptions{Validity: s.devices().options().CertValidity, Now: t})
		if err != nil {
			return refuse(pkiProblem(err))
		}
		notAfter := cert.NotAfter.UTC()
		cred := &model.DeviceCredential{ID: newID(), TenantID: id.Tenant, DeviceID: d.ID, Kind: model.CredCertificate,
			Fingerprint: pki.Fingerprint(cert), Serial: cert.SerialNumber.Text(16), NotAfter: &notAfter, CreatedAt: t}
		if err := tx.CreateDeviceCredential(cred); err != nil {
			return err
		}
		before := audit.Digest(d)
		d.LastSeen, d.UpdatedAt = &t, t
		if err := tx.UpdateDevice(d); err != nil {
			return err
		}
		rec.Action, rec.BeforeDigest, rec.AfterDigest = "device.reenroll", before, audit.Digest(d)
		rec.Detail = jsonDetail(map[string]any{"credential": cred.ID, "renews": live.ID, "fingerprint": cred.Fingerprint, "not_after": notAfter})
		issued = cert
		return tx.AppendAudit(rec)
	})
	if err != nil {
		return err
	}
	if refusal != nil {
		return refusal
	}
	s.onChange()
	return writeESTCert(w, http.StatusOK, issued)
}
