package admin

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/devobs"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
)

func TestActivityFindings(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	old, recent := now.Add(-8*24*time.Hour), now.Add(-24*time.Hour)
	after := old.Add(time.Hour)
	cred := func(dev string, at time.Time) model.DeviceCredential {
		return model.DeviceCredential{ID: "c-" + dev, TenantID: "t", DeviceID: dev, Kind: model.CredCertificate, CreatedAt: at}
	}
	rec := devobs.New(0, 0)
	rec.RecordRefusal(policy.Refusal{Kind: policy.RefusedRevokedCertificate, Tenant: "t", Subject: "device:r1", Credential: "certificate 0a"}, "https", "10.1.1.1", now)
	rec.RecordRefusal(policy.Refusal{Kind: policy.RefusedRevokedAPIKey, Tenant: "t", Subject: "app:billing", Credential: "api_key:k1"}, "mqtt", "", now)
	rec.RecordRefusal(policy.Refusal{Kind: policy.RefusedInactiveDevice, Tenant: "t", Subject: "device:q1", Credential: "certificate 0b", Status: "quarantined"}, "mqtts", "10.1.1.2", now)
	rec.RecordRefusal(policy.Refusal{Kind: policy.RefusedInactiveDevice, Tenant: "t", Subject: "device:p1", Credential: "certificate 0c", Status: "pending"}, "https", "10.1.1.3", now)
	rec.RecordRefusal(policy.Refusal{Kind: policy.RefusedRevokedCertificate, Tenant: "other", Subject: "device:x", Credential: "certificate 0d"}, "https", "10.1.1.4", now)

	tests := []struct {
		name    string
		rec     *devobs.Recorder
		devices []model.Device
		creds   []model.DeviceCredential
		want    map[string][]string // finding id -> object prefixes
	}{
		{"never seen since enrollment", nil,
			[]model.Device{
				{ID: "silent", Status: model.DeviceActive, LastSeen: &old},        // enrollment sets last_seen
				{ID: "no-last-seen", Status: model.DeviceActive},                  // imported active, never seen
				{ID: "seen", Status: model.DeviceActive, LastSeen: &after},        // seen after enrollment
				{ID: "young", Status: model.DeviceActive, LastSeen: &recent},      // enrolled yesterday
				{ID: "suspended", Status: model.DeviceSuspended, LastSeen: &old},  // not expected to talk
				{ID: "no-credential", Status: model.DeviceActive, LastSeen: nil}}, // never enrolled: another finding
			[]model.DeviceCredential{cred("silent", old), cred("no-last-seen", old), cred("seen", old), cred("young", recent), cred("suspended", old)},
			map[string][]string{"never-seen": {"device:no-last-seen (enrolled", "device:silent (enrolled"}}},
		{"attempts of the tenant only", rec, nil, nil, map[string][]string{
			"revoked-credential-attempts": {"app:billing api_key:k1 (mqtt: 1 attempt(s), last 2026-11-30T12:00:00Z from unknown address)",
				"device:r1 certificate 0a (https: 1 attempt(s), last 2026-11-30T12:00:00Z from 10.1.1.1)"},
			"suspended-device-attempts": {"device:q1 certificate 0b (mqtts: 1 attempt(s), last 2026-11-30T12:00:00Z from 10.1.1.2) [quarantined]"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string][]string{}
			for _, f := range activityFindings(tc.rec, "t", tc.devices, tc.creds, now) {
				if f.Severity == "" || f.Fix == "" || f.Title == "" {
					t.Errorf("incomplete finding %+v", f)
				}
				objs := append([]string(nil), f.Objects...)
				sort.Strings(objs)
				got[f.ID] = objs
			}
			if len(got) != len(tc.want) {
				t.Fatalf("findings %v, want %v", got, tc.want)
			}
			for id, want := range tc.want {
				if len(got[id]) != len(want) {
					t.Fatalf("%s: %v, want %v", id, got[id], want)
				}
				for i := range want {
					if !strings.HasPrefix(got[id][i], want[i]) {
						t.Errorf("%s object %d: %q, want prefix %q", id, i, got[id][i], want[i])
					}
				}
			}
		})
	}
}
