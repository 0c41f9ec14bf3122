package review

import (
	"slices"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/internal/spec"
)

func TestParsePointer(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr string
	}{
		{name: "empty is the document", in: "", want: nil},
		{name: "root key", in: "/paths", want: []string{"paths"}},
		{name: "escaped slash", in: "/paths/~1vehicles~1{vin}/get", want: []string{"paths", "/vehicles/{vin}", "get"}},
		{name: "escaped tilde before slash (RFC 6901 section 4)", in: "/a~01", want: []string{"a~1"}},
		{name: "empty token", in: "/", want: []string{""}},
		{name: "no leading slash", in: "paths", wantErr: "start with '/'"},
		{name: "fragment form is not a pointer", in: "#/paths", wantErr: "start with '/'"},
		{name: "dangling tilde", in: "/a~", wantErr: "token 1: '~' must be followed by 0 or 1"},
		{name: "bad escape", in: "/a/b~2", wantErr: "token 2: '~' must be followed"},
		{name: "control character", in: "/a\x1b[31m", wantErr: "control characters"},
		{name: "invalid UTF-8", in: "/\xff", wantErr: "UTF-8"},
		{name: "too long", in: "/" + strings.Repeat("a", MaxPointerLen), wantErr: "longer than"},
		{name: "too deep", in: strings.Repeat("/a", MaxPointerTokens+1), wantErr: "reference tokens"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePointer(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParsePointer(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("ParsePointer(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			if FormatPointer(got) != tc.in {
				t.Fatalf("round trip: %q -> %q", tc.in, FormatPointer(got))
			}
		})
	}
}

const doc = `openapi: 3.1.0
info: {title: T, version: "1"}
servers: [{url: "https://x.example.com/v1"}]
paths:
  /vehicles/{vin}:
    get:
      operationId: getVehicle
      parameters:
        - name: vin
          in: path
          required: true
          schema: {type: string}
      responses:
        "200": {description: ok}
`

func TestLocate(t *testing.T) {
	d, err := spec.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ptr  string
		line int
		ok   bool
	}{
		{"/paths/~1vehicles~1{vin}/get", 6, true},
		{"/paths/~1vehicles~1{vin}/get/parameters/0/name", 9, true},
		{"/paths/~1vehicles~1{vin}/get/responses/200", 14, true},
		{"/paths/~1vehicles~1{vin}/get/parameters/1", 0, false},
		{"/paths/~1vehicles~1{vin}/get/parameters/00", 0, false},
		{"/paths/~1vehicles/get", 0, false},
		{"/info/title/x", 0, false},
	}
	for _, tc := range tests {
		toks, err := ParsePointer(tc.ptr)
		if err != nil {
			t.Fatal(err)
		}
		line, _, ok := Locate(d, toks)
		if ok != tc.ok || line != tc.line {
			t.Errorf("Locate(%s) = line %d, %v; want line %d, %v", tc.ptr, line, ok, tc.line, tc.ok)
		}
	}
}

// FuzzParsePointer: the parser never panics, and what it accepts formats
// back to the same text (nothing is silently dropped or rewritten).
func FuzzParsePointer(f *testing.F) {
	for _, s := range []string{"", "/", "/paths/~1a~1{b}/get", "/a~01", "/a~", "/~2", "x", "/\xff", "/a/0/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks, err := ParsePointer(s)
		if err != nil {
			return
		}
		if len(toks) > MaxPointerTokens {
			t.Fatalf("%d tokens accepted", len(toks))
		}
		if got := FormatPointer(toks); got != s {
			t.Fatalf("ParsePointer(%q) formats back as %q", s, got)
		}
	})
}
