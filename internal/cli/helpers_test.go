package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
)

// testToken is the bearer token of the tests; it must never be printed.
const testToken = "fgt_TESTSECRETdoNotPrint0123456789abcdefghijk"

// recorded is one request the fake admin API received.
type recorded struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
}

// fakeAPI plays the admin API: routes are ServeMux patterns such as
// "GET /admin/v1/apis"; every request is recorded.
type fakeAPI struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newFakeAPI(t *testing.T, routes map[string]http.HandlerFunc) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.HandleFunc(pattern, h)
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fakeAPI) last(t *testing.T) recorded {
	t.Helper()
	r := f.requests()
	if len(r) == 0 {
		t.Fatal("the server received no request")
	}
	return r[len(r)-1]
}

// reply answers with status and v as JSON.
func reply(status int, v any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
}

// replyProblem answers with a problem document.
func replyProblem(status int, p any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(p)
	}
}

type cliResult struct {
	stdout, stderr string
	err            error
}

// all is everything the user could see.
func (r cliResult) all() string {
	s := r.stdout + r.stderr
	if r.err != nil {
		s += r.err.Error()
	}
	return s
}

type runOpts struct {
	env    map[string]string
	home   string
	stdin  string
	client *http.Client // nil: the default client
}

// runCLI runs the commands under a root command the way cmd/fleetgate
// will, hermetically: env and home come from o, never from the process.
func runCLI(t *testing.T, o runOpts, args ...string) cliResult {
	t.Helper()
	if o.home == "" {
		o.home = t.TempDir()
	}
	var out, errb bytes.Buffer
	a := &app{
		stdout: &out, stderr: &errb,
		getenv:     func(k string) string { return o.env[k] },
		home:       func() (string, error) { return o.home, nil },
		httpClient: o.client,
	}
	root := &cobra.Command{Use: "fleetgate"}
	root.AddCommand(a.commands()...)
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(o.stdin))
	err := root.Execute()
	return cliResult{out.String(), errb.String(), err}
}

// env returns the usual environment for a fake server.
func env(f *fakeAPI) map[string]string {
	return map[string]string{EnvServer: f.URL, EnvToken: testToken}
}

// jsonEqual compares JSON documents semantically.
func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got invalid JSON %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want invalid JSON %q: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Errorf("body\n got: %s\nwant: %s", gb, wb)
	}
}
