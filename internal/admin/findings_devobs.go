package admin

import (
	"fmt"
	"time"

	"github.com/fleetgate/fleetgate/internal/devobs"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
)

// neverSeenAfter is how long an enrolled device may stay silent before it
// is reported: a credential nobody uses is attack surface.
const neverSeenAfter = 7 * 24 * time.Hour

// activityFindings reports what the data plane saw (or did not see):
// devices enrolled over a week ago and never seen since, revoked
// credentials still attempting to connect, and suspended, quarantined or
// decommissioned devices still attempting access. Attempts are those
// recorded by this node since it started (in memory).
func activityFindings(rec *devobs.Recorder, tenant string, devices []model.Device, creds []model.DeviceCredential, now time.Time) []Finding {
	var out []Finding
	enrolled := map[string]time.Time{} // device -> first credential issued
	for _, c := range creds {
		if t, ok := enrolled[c.DeviceID]; !ok || c.CreatedAt.Before(t) {
			enrolled[c.DeviceID] = c.CreatedAt
		}
	}
	var silent []string
	for _, d := range devices {
		at, ok := enrolled[d.ID]
		// Enrollment itself sets last_seen (the device reached the data
		// plane to enroll), so "never seen since" is: not after it.
		if ok && d.Status == model.DeviceActive && (d.LastSeen == nil || !d.LastSeen.After(at)) && now.Sub(at) > neverSeenAfter {
			silent = append(silent, fmt.Sprintf("device:%s (enrolled %s)", d.ID, at.Format("2006-01-02")))
		}
	}
	if len(silent) > 0 {
		out = append(out, Finding{ID: "never-seen", Severity: "low", Title: fmt.Sprintf("%d device(s) enrolled over a week ago were never seen since", len(silent)),
			Objects: silent, Fix: "check that the devices are deployed; revoke the credentials of devices that will not be (unused credentials are attack surface)"})
	}
	if rec == nil {
		return out
	}
	var revoked, barred []string
	for _, a := range rec.Attempts(tenant) {
		obj := fmt.Sprintf("%s %s (%s: %d attempt(s), last %s from %s)", a.Subject, a.Credential, a.Protocol, a.Count,
			a.Last.Format(time.RFC3339), orUnknown(a.Remote))
		switch a.Kind {
		case policy.RefusedRevokedCertificate, policy.RefusedRevokedAPIKey, policy.RefusedRevokedToken:
			revoked = append(revoked, obj)
		case policy.RefusedInactiveDevice:
			if a.Status != string(model.DevicePending) {
				barred = append(barred, fmt.Sprintf("%s [%s]", obj, a.Status))
			}
		}
	}
	if len(revoked) > 0 {
		out = append(out, Finding{ID: "revoked-credential-attempts", Severity: "high", Title: fmt.Sprintf("%d revoked credential(s) still attempting to connect", len(revoked)),
			Objects: revoked, Fix: "the gateway refuses them; find who still holds them (remote addresses above): re-enroll a legitimate device, or treat the key as compromised and block the source"})
	}
	if len(barred) > 0 {
		out = append(out, Finding{ID: "suspended-device-attempts", Severity: "high", Title: fmt.Sprintf("%d suspended, quarantined or decommissioned device(s) still attempting access", len(barred)),
			Objects: barred, Fix: "the gateway refuses them; revoke their credentials if the suspension is not temporary, and investigate quarantined devices that keep trying"})
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown address"
	}
	return s
}
