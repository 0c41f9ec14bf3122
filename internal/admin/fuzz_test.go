package admin

import (
	"errors"
	"testing"
)

// FuzzDecode drives the strict JSON decoder with arbitrary bodies: it must
// never panic, and every refusal must be a located problem.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"version":"v1","bindings":{"http":{"base_path":"/v1","operations":[{"method":"GET","path":"/x"}]}},"upstream":{"targets":["http://a"]},"spec":"openapi: 3.1.0"}`,
		`{"tenants":[{"id":"a"}],"apis":[{"name":"x","versions":[{"version":"v1"}]}],"dry_run":true}`,
		`{"to":"deprecated","sunset":"2030-01-01T00:00:00Z"}`,
		`{"name":"factory","certificate":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n","verification_certificate":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n","mapping":{"source":"cn"}}`,
		`{"name":"f","certificate":"","verification_certificate":null,"mapping":{"source":"san-uri","pattern":"spiffe://a/{device}"}}`,
		`{"verification_certificate":1}`, `{"verification_certificate":"x","verification_certificate":"y"}`,
		`{"a":`, `[]`, `null`, `{"expires_in":"1h"}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		targets := []any{&versionBody{}, &fleetDoc{}, &apiBody{}, &externalCABody{}, &struct {
			ExpiresIn duration `json:"expires_in"`
		}{}}
		for _, v := range targets {
			err := decodeBytes(body, v)
			var p *Problem
			if err != nil && !errors.As(err, &p) {
				t.Fatalf("non-problem error %T: %v", err, err)
			}
			if p != nil && (p.Status != 400 || p.Type == "") {
				t.Fatalf("unexpected problem %+v", p)
			}
		}
	})
}
