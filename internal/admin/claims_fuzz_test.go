package admin

import (
	"errors"
	"testing"

	"github.com/fleetgate/fleetgate/internal/model"
)

// FuzzParseClaimRequest: any body is either a checked request (valid device
// id, a model, a parsed CSR) or a 4xx problem with a stable type, never a
// panic.
func FuzzParseClaimRequest(f *testing.F) {
	for _, s := range []string{
		`{"device_id":"meter-1","model":"em-300","serial":"S1","csr":"-----BEGIN CERTIFICATE REQUEST-----\nMIGb\n-----END CERTIFICATE REQUEST-----\n"}`,
		`{"device_id":"a b","model":"","csr":""}`, `{"device_id":"m-1","model":"m","csr":"","verification_certificate":"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"}`, `{"device_id":1}`, `{}{}`, `[`, ``, `null`, `{"x":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseClaimRequest(body)
		if err != nil {
			var p *Problem
			if req != nil || !errors.As(err, &p) || p.Status < 400 || p.Status > 499 || p.Type == "" {
				t.Fatalf("refusal is not a 4xx problem: %v", err)
			}
			return
		}
		if !model.ValidDeviceID(req.DeviceID) || req.Model == "" || req.csr == nil {
			t.Fatalf("accepted an unchecked request: %+v", req)
		}
	})
}
