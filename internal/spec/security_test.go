package spec

import "testing"

func TestSecurity(t *testing.T) {
	doc := `openapi: 3.1.0
info: {title: t, version: "1"}
security:
  - key: []
components:
  securitySchemes:
    key: {type: apiKey, in: header, name: X-Device-Key}
    jwt: {type: http, scheme: bearer, bearerFormat: JWT}
    oidc: {type: openIdConnect, openIdConnectUrl: "https://id.example.com/.well-known/openid-configuration"}
    mtls: {type: mutualTLS}
paths:
  /a:
    get:
      responses: {"200": {description: ok}}
    post:
      security: [{jwt: []}, {mtls: []}]
      responses: {"200": {description: ok}}
  /health:
    get:
      security: []
      responses: {"200": {description: ok}}
  /b:
    get:
      security: [{}, {oidc: []}]
      responses: {"200": {description: ok}}
`
	d, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, path string
		want               Security
	}{
		{"document default", "GET", "/a", Security{Declared: true, APIKeyHeaders: []string{"X-Device-Key"}}},
		{"operation override", "POST", "/a", Security{Declared: true, Bearer: true, MutualTLS: true}},
		{"explicit anonymous", "GET", "/health", Security{Declared: true, Anonymous: true}},
		{"optional auth", "get", "/b", Security{Declared: true, Anonymous: true, Bearer: true}},
		{"unknown path uses default", "GET", "/zzz", Security{Declared: true, APIKeyHeaders: []string{"X-Device-Key"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := d.Security(tc.method, tc.path)
			if got.Declared != tc.want.Declared || got.Anonymous != tc.want.Anonymous || got.Bearer != tc.want.Bearer ||
				got.MutualTLS != tc.want.MutualTLS || len(got.APIKeyHeaders) != len(tc.want.APIKeyHeaders) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	none, _ := Parse([]byte("openapi: 3.0.3\ninfo: {title: t, version: \"1\"}\npaths:\n  /x:\n    get:\n      responses: {\"200\": {description: ok}}\n"))
	if s := none.Security("GET", "/x"); s.Declared {
		t.Fatalf("no security declared: %+v", s)
	}
}
