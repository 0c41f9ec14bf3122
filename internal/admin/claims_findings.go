package admin

import (
	"fmt"
	"time"

	"github.com/fleetgate/fleetgate/internal/store"
)

// claimNearFull is the share of a claim's maximum from which it is
// reported as near exhaustion: a batch that is nearly done should get its
// claim revoked, or a new claim planned, before devices start failing.
const claimNearFull = 0.9

// claimFindings reports claims near exhaustion, claims that expired or
// were used up but were never revoked (their secret is still out there,
// in factory tooling), and external CAs expiring within 30 days (their
// devices stop authenticating then).
func claimFindings(tx store.Tx, tenant string, now time.Time) ([]Finding, error) {
	claims, err := tx.ListClaims(tenant, store.Page{Limit: -1})
	if err != nil {
		return nil, err
	}
	var near, stale []string
	for _, c := range claims {
		switch c.Usable(now) {
		case "":
			if float64(c.Used) >= claimNearFull*float64(c.MaxDevices) {
				near = append(near, fmt.Sprintf("claim:%s (%d/%d)", c.Name, c.Used, c.MaxDevices))
			}
		case "claim-expired", "claim-exhausted":
			stale = append(stale, "claim:"+c.Name)
		}
	}
	var out []Finding
	if len(near) > 0 {
		out = append(out, Finding{ID: "claim-near-exhaustion", Severity: "medium", Title: fmt.Sprintf("%d claim(s) have enrolled 90%% or more of their devices", len(near)),
			Objects: near, Fix: "revoke the claim when its batch is done, or create a new claim for the next batch"})
	}
	if len(stale) > 0 {
		out = append(out, Finding{ID: "claim-unrevoked", Severity: "low", Title: fmt.Sprintf("%d expired or exhausted claim(s) were never revoked", len(stale)),
			Objects: stale, Fix: "revoke them (fleetgate claims revoke) so the record says the batch is closed"})
	}
	cas, err := tx.ListExternalCAs(tenant, store.Page{Limit: -1})
	if err != nil {
		return nil, err
	}
	var expiring []string
	for _, ca := range cas {
		if !ca.NotAfter.After(now.Add(expiryWindow)) {
			expiring = append(expiring, fmt.Sprintf("external_ca:%s (%s)", ca.Name, ca.NotAfter.Format("2006-01-02")))
		}
	}
	if len(expiring) > 0 {
		out = append(out, Finding{ID: "external-ca-expiring", Severity: "high", Title: fmt.Sprintf("%d external CA(s) expire within 30 days", len(expiring)),
			Objects: expiring, Fix: "register the CA's successor before it expires; its devices stop authenticating then"})
	}
	return out, nil
}
