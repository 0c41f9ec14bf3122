package admin

import (
	"errors"
	"strings"
	"testing"
)

// FuzzDeviceImport drives the import parser with arbitrary JSON and CSV
// bodies: it must never panic, a refused body is a problem, and every row
// error points into /rows/ (or at the CSV header's /columns).
func FuzzDeviceImport(f *testing.F) {
	for _, s := range []string{
		`[{"id":"a"},{"id":"bad id","owners":["x"]},7,null]`,
		"id,model,owners,attr.region\na,m,user:a;user:b,eu\n",
		"id,status\n\"unterminated\n", "id\na,b\n", "\ufeffid\r\nx\r\n", `[`, ``,
	} {
		f.Add(true, []byte(s))
		f.Add(false, []byte(s))
	}
	f.Fuzz(func(t *testing.T, csv bool, body []byte) {
		ct := "application/json"
		if csv {
			ct = "text/csv"
		}
		rows, errs, err := parseImport(ct, body)
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) || p.Status < 400 || p.Status > 499 {
				t.Fatalf("refusal is not a 4xx problem: %v", err)
			}
			return
		}
		for _, e := range errs {
			if !strings.HasPrefix(e.Pointer, "/rows/") || rowOf(e.Pointer) < 0 {
				t.Fatalf("row error without a row pointer: %+v", e)
			}
		}
		for i := range rows {
			for _, e := range rows[i].Body.validate(rowPtr(rows[i].Row)) {
				if rowOf(e.Pointer) != rows[i].Row {
					t.Fatalf("validation error points at another row: %+v", e)
				}
			}
		}
	})
}

// FuzzEnrollRequest drives what the enrollment endpoint parses before it
// trusts anything: the Authorization header and the CSR body. Every
// refusal must be a 4xx problem; nothing may panic.
func FuzzEnrollRequest(f *testing.F) {
	f.Add("Bearer fge_"+strings.Repeat("a", 43), []byte("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add("bearer x", []byte{0x30, 0x82, 0x01, 0x00})
	f.Add("", []byte("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"))
	f.Add("Basic abc", []byte("-----BEGIN NEW CERTIFICATE REQUEST-----\n"))
	f.Fuzz(func(t *testing.T, authz string, body []byte) {
		for _, err := range []error{func() error { _, err := enrollSecret(authz); return err }(), func() error { _, err := enrollCSR(body); return err }()} {
			if err == nil {
				continue
			}
			var p *Problem
			if !errors.As(err, &p) || p.Status < 400 || p.Status > 499 {
				t.Fatalf("refusal is not a 4xx problem: %v", err)
			}
		}
	})
}
