package admin

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/internal/identity/pki"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

// Finding is one posture problem: what is wrong, with which objects, and
// how to fix it.
type Finding struct {
	ID       string   `json:"id"`
	Severity string   `json:"severity"` // critical, high, medium, low
	Title    string   `json:"title"`
	Objects  []string `json:"objects"`
	Fix      string   `json:"fix"`
}

// expiryWindow is how early expiring certificates are reported.
const expiryWindow = 30 * 24 * time.Hour

var severityRank = map[string]int{"critical": 0, "high": 1, "medium": 2, "low": 3}

// securityFindings reports the tenant's identity posture from what the
// control plane knows: certificates shared by several devices, CA and
// device certificates expiring within 30 days, weak CA keys, devices that
// never enrolled, suspended devices still holding live credentials, and
// over-broad authorization (object identifiers without identity binding).
func (s *Server) securityFindings(w http.ResponseWriter, r *http.Request, p *principal) error {
	out := []Finding{}
	add := func(f Finding) {
		sort.Strings(f.Objects)
		out = append(out, f)
	}
	now := time.Now()
	err := s.st.View(r.Context(), func(tx store.Tx) error {
		if ca, err := tx.GetTenantCA(p.tenant); err == nil {
			if b, _ := pem.Decode(ca.CertPEM); b != nil {
				if cert, err := x509.ParseCertificate(b.Bytes); err == nil {
					if pki.ExpiresWithin(cert, expiryWindow, now) {
						add(Finding{ID: "ca-expiring", Severity: "critical", Title: "the device CA expires on " + cert.NotAfter.Format("2006-01-02"),
							Objects: []string{"ca:" + p.tenant}, Fix: "create a new CA and re-enroll devices before the old one expires"})
					}
					if weak := pki.Weakness(cert); weak != "" {
						add(Finding{ID: "weak-key", Severity: "high", Title: "the device CA uses a weak key or signature (" + weak + ")",
							Objects: []string{"ca:" + p.tenant}, Fix: "replace the CA with an ECDSA P-256 or Ed25519 one"})
					}
				}
			}
		}
		devices, err := tx.ListDevices(p.tenant, store.Page{Limit: -1})
		if err != nil {
			return err
		}
		creds, err := tx.ListDeviceCredentials(p.tenant, "", store.Page{Limit: -1})
		if err != nil {
			return err
		}
		byFP := map[string][]string{}
		live := map[string]int{}
		var expiring []string
		for _, c := range creds {
			if c.Kind != model.CredCertificate || !c.Live(now) {
				continue
			}
			live[c.DeviceID]++
			byFP[c.Fingerprint] = append(byFP[c.Fingerprint], "device:"+c.DeviceID)
			if c.NotAfter != nil && c.NotAfter.Before(now.Add(expiryWindow)) {
				expiring = append(expiring, fmt.Sprintf("device:%s (credential %s, %s)", c.DeviceID, c.ID, c.NotAfter.Format("2006-01-02")))
			}
		}
		for fp, ds := range byFP {
			if len(ds) > 1 {
				add(Finding{ID: "shared-certificate", Severity: "critical", Title: "one certificate (" + fp[:16] + "…) authenticates several devices",
					Objects: ds, Fix: "revoke the certificate and enroll each device with its own key"})
			}
		}
		if len(expiring) > 0 {
			add(Finding{ID: "certificates-expiring", Severity: "medium", Title: fmt.Sprintf("%d device certificate(s) expire within 30 days", len(expiring)),
				Objects: expiring, Fix: "let the devices renew (EST simplereenroll) or re-enroll them"})
		}
		var neverEnrolled, suspendedLive []string
		for _, d := range devices {
			switch {
			case d.Status == model.DevicePending && d.FirstSeen == nil && now.Sub(d.CreatedAt) > 7*24*time.Hour:
				neverEnrolled = append(neverEnrolled, "device:"+d.ID)
			case (d.Status == model.DeviceSuspended || d.Status == model.DeviceQuarantined) && live[d.ID] > 0:
				suspendedLive = append(suspendedLive, "device:"+d.ID)
			}
		}
		if len(neverEnrolled) > 0 {
			add(Finding{ID: "never-enrolled", Severity: "low", Title: fmt.Sprintf("%d device(s) registered over a week ago never enrolled", len(neverEnrolled)),
				Objects: neverEnrolled, Fix: "enroll them or delete the registrations (stale identities are attack surface)"})
		}
		if len(suspendedLive) > 0 {
			add(Finding{ID: "suspended-with-credentials", Severity: "medium", Title: fmt.Sprintf("%d suspended or quarantined device(s) still hold live certificates", len(suspendedLive)),
				Objects: suspendedLive, Fix: "revoke their certificates if the suspension is not temporary"})
		}
		for _, f := range activityFindings(s.devobs, p.tenant, devices, creds, now) {
			add(f)
		}
		versions, err := tx.ListVersionsByState(p.tenant, model.StatePublished, model.StateDeprecated)
		if err != nil {
			return err
		}
		var unbound []string
		for i := range versions {
			v := &versions[i]
			for id, tmpl := range operationTemplates(&v.Bindings) {
				op := v.Policy.Operations[id]
				if strings.Contains(tmpl, "{") && len(op.Bindings) == 0 && len(op.Rules) == 0 && len(v.Policy.Rules) == 0 {
					unbound = append(unbound, v.APIName+"/"+v.Label+" "+id)
				}
			}
			if m := v.Bindings.MQTT; m != nil {
				for _, c := range m.Channels {
					if strings.Contains(c.Topic, "#") || strings.Contains(c.Topic, "+") {
						unbound = append(unbound, v.APIName+"/"+v.Label+" "+c.Action+" "+c.Topic)
					}
				}
			}
		}
		if f, err := s.pastSunsetFinding(tx, p.tenant, now); err != nil || f != nil {
			if err != nil {
				return err
			}
			add(*f)
		}
		if len(unbound) > 0 {
			add(Finding{ID: "over-broad-authorization", Severity: "high", Title: fmt.Sprintf("%d operation(s) accept any object identifier or topic", len(unbound)),
				Objects: unbound, Fix: "bind the identifier to the caller (policy bindings) or add a rule that uses it"})
		}
		claimFs, err := claimFindings(tx, p.tenant, now)
		for _, f := range claimFs {
			add(f)
		}
		if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.SliceStable(out, func(i, j int) bool { return severityRank[out[i].Severity] < severityRank[out[j].Severity] })
	return writeJSON(w, http.StatusOK, map[string]any{"tenant": p.tenant, "findings": out})
}
