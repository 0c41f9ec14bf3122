package cli

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestProblemRendering(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantStderr string
	}{
		{
			name: "problem with field errors and lines",
			handler: replyProblem(422, map[string]any{
				"type": "https://fleetgate.dev/problems/validation", "title": "Validation failed", "status": 422,
				"detail": "2 problem(s) in the request body",
				"errors": []map[string]any{
					{"pointer": "/spec", "detail": "paths./x: missing responses", "line": 12},
					{"pointer": "/upstream/targets/0", "detail": "must be a URL"},
				},
			}),
			wantStderr: "Error: Validation failed (422): 2 problem(s) in the request body\n" +
				"  /spec: paths./x: missing responses (line 12)\n" +
				"  /upstream/targets/0: must be a URL\n",
		},
		{
			name:       "problem without detail",
			handler:    replyProblem(403, map[string]any{"title": "Forbidden", "status": 403}),
			wantStderr: "Error: Forbidden (403)\n",
		},
		{
			name:       "problem without status uses the HTTP status",
			handler:    replyProblem(409, map[string]any{"title": "Conflict", "detail": "exists"}),
			wantStderr: "Error: Conflict (409): exists\n",
		},
		{
			name:       "terminal escapes are neutralised",
			handler:    replyProblem(400, map[string]any{"title": "Bad\x1b[31m request", "status": 400, "detail": "line1\nline2"}),
			wantStderr: "Error: Bad\\x1b[31m request (400): line1\\x0aline2\n",
		},
		{
			name: "plain text from a proxy",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(502)
				_, _ = w.Write([]byte("upstream connect error\n"))
			},
			wantStderr: "Error: server answered 502 Bad Gateway: upstream connect error\n",
		},
		{
			name: "html error page is not dumped",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(503)
				_, _ = w.Write([]byte("<html>down</html>"))
			},
			wantStderr: "Error: server answered 503 Service Unavailable\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t, map[string]http.HandlerFunc{"GET /admin/v1/apis/vehicles": tc.handler})
			r := runCLI(t, runOpts{env: env(f)}, "apis", "get", "vehicles")
			if r.err == nil {
				t.Fatal("want an error (non-zero exit)")
			}
			if r.stderr != tc.wantStderr {
				t.Errorf("stderr\n got %q\nwant %q", r.stderr, tc.wantStderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			if strings.Contains(r.stderr, "Usage:") {
				t.Error("usage printed for a server error")
			}
		})
	}
}

func TestNetworkErrorNamesServer(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	r := runCLI(t, runOpts{env: map[string]string{EnvServer: url, EnvToken: testToken}}, "apis", "list")
	if r.err == nil {
		t.Fatal("want an error")
	}
	want := "cannot reach fleetgate server at " + url
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr = %q, want it to contain %q", r.stderr, want)
	}
	var ne *NetworkError
	if !errors.As(r.err, &ne) {
		t.Errorf("err = %T, want *NetworkError", r.err)
	}
}

func TestInvalidServerURL(t *testing.T) {
	for _, s := range []string{"127.0.0.1:9400", "ftp://x", "http://", "http://x/?a=b"} {
		r := runCLI(t, runOpts{env: map[string]string{EnvServer: s, EnvToken: testToken}}, "whoami")
		if r.err == nil || !strings.Contains(r.err.Error(), "invalid server URL") {
			t.Errorf("%s: err = %v", s, r.err)
		}
	}
}

func TestClientDo(t *testing.T) {
	var got *http.Request
	var gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		switch r.URL.Path {
		case "/prefix/admin/v1/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/prefix/admin/v1/redirect":
			http.Redirect(w, r, "http://elsewhere.example/", http.StatusFound)
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"name":"x"}`))
		}
	}))
	defer srv.Close()
	c := &Client{Server: srv.URL + "/prefix/", Token: testToken, Tenant: "acme"}
	ctx := context.Background()

	var out struct{ Name string }
	if err := c.Do(ctx, "POST", "/things?x=1", map[string]int{"a": 1}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Name != "x" {
		t.Errorf("decoded %+v", out)
	}
	if got.URL.Path != "/prefix/admin/v1/things" || got.URL.RawQuery != "x=1" {
		t.Errorf("URL = %s", got.URL)
	}
	for h, want := range map[string]string{
		"Authorization": "Bearer " + testToken, "Fleetgate-Tenant": "acme", "Content-Type": "application/json",
	} {
		if v := got.Header.Get(h); v != want {
			t.Errorf("%s = %q, want %q", h, v, want)
		}
	}
	if gotBody != `{"a":1}` {
		t.Errorf("body = %q", gotBody)
	}

	out.Name = "kept"
	if err := c.Do(ctx, "DELETE", "/empty", nil, &out); err != nil || out.Name != "kept" {
		t.Errorf("204: err %v, out %+v", err, out)
	}
	if got.Header.Get("Content-Type") != "" {
		t.Error("Content-Type sent without a body")
	}

	err := c.Do(ctx, "POST", "/redirect", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "redirected") {
		t.Errorf("redirect: err = %v, want a refusal", err)
	}
}

func TestEscapePath(t *testing.T) {
	tests := []struct {
		segs    []string
		want    string
		wantErr bool
	}{
		{[]string{"apis", "vehicles", "versions", "v1"}, "/apis/vehicles/versions/v1", false},
		{[]string{"apis", "a/b"}, "/apis/a%2Fb", false},
		{[]string{"apis", "a?b"}, "/apis/a%3Fb", false},
		{[]string{"apis", ".."}, "", true},
		{[]string{"apis", ""}, "", true},
	}
	for _, tc := range tests {
		got, err := escapePath(tc.segs...)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("escapePath(%q) = %q, %v", tc.segs, got, err)
		}
	}
}

func TestSanitize(t *testing.T) {
	tests := map[string]string{
		"plain":         "plain",
		"tab\there":     `tab\x09here`,
		"\x1b[2J":       `\x1b[2J`,
		"evil\u202etxt": `evil\u202etxt`,
		"ünïcode ok":    "ünïcode ok",
	}
	for in, want := range tests {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}
