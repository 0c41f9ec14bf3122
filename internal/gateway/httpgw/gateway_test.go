package httpgw

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/identity/credential"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
	"github.com/fleetgate/fleetgate/internal/ratelimit"
	"github.com/fleetgate/fleetgate/internal/usage"
)

// version returns an anonymous-access version routing GET /<base>/items/{id}
// to targets.
func version(id, base string, state model.State, targets ...string) model.Version {
	v := model.Version{ID: id, TenantID: "acme", APIName: "items-" + id, Label: "v1", State: state,
		Bindings: model.Bindings{HTTP: &model.HTTPBinding{BasePath: base, Operations: []model.HTTPOperation{
			{Method: "GET", Path: "/items/{id}", OperationID: "getItem"},
			{Method: "POST", Path: "/items", OperationID: "addItem"},
		}}},
		Upstream: model.Upstream{Targets: targets},
		Policy:   model.Policy{Auth: &model.AuthPolicy{Methods: []string{"anonymous", "api_key"}}},
	}
	if state == model.StateDeprecated {
		sunset := time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)
		v.Sunset, v.Successor = &sunset, "v2"
	}
	return v
}

type harness struct {
	eng *policy.Engine
	gw  *Gateway
	srv *httptest.Server
	use *usage.Recorder
}

func newHarness(t testing.TB, timeout time.Duration, vs ...model.Version) *harness {
	t.Helper()
	c := ratelimit.NewLocal(ratelimit.LocalOptions{})
	t.Cleanup(func() { c.Close() })
	h := &harness{eng: policy.NewEngine(policy.Options{Counter: c}), use: usage.New()}
	h.swap(t, vs...)
	h.gw = New(Options{Engine: h.eng, Usage: h.use, UpstreamTimeout: timeout})
	h.srv = httptest.NewServer(h.gw)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *harness) swap(t testing.TB, vs ...model.Version) {
	t.Helper()
	s := policy.Compile(&policy.Input{Versions: vs}, nil)
	if len(s.Warnings) > 0 {
		t.Fatalf("warnings: %v", s.Warnings)
	}
	h.eng.Swap(s)
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestProxyHeaders(t *testing.T) {
	var seen http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		fmt.Fprint(w, "item ", strings.TrimPrefix(r.URL.Path, "/api/items/"))
	}))
	defer up.Close()
	h := newHarness(t, 0, version("a", "/api", model.StateDeprecated, up.URL))
	res, body := get(t, h.srv.URL+"/api/items/42", "X-Request-Id", "trace-1", "Connection", "X-Drop-Me", "X-Drop-Me", "x",
		"X-Fleetgate-Subject", "app:forged")
	if res.StatusCode != 200 || body != "item 42" {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
	if seen.Get("X-Request-Id") != "trace-1" || res.Header.Get("X-Request-Id") != "trace-1" {
		t.Errorf("request id not propagated: %v / %v", seen.Get("X-Request-Id"), res.Header.Get("X-Request-Id"))
	}
	if seen.Get("X-Forwarded-For") == "" || seen.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("X-Forwarded-* not set: %v", seen)
	}
	if seen.Get("X-Drop-Me") != "" || seen.Get("Connection") != "" {
		t.Errorf("hop-by-hop headers crossed the proxy")
	}
	if seen.Get("X-Fleetgate-Subject") != "anonymous" {
		t.Errorf("caller could forge the identity header: %q", seen.Get("X-Fleetgate-Subject"))
	}
	if res.Header.Get("Deprecation") == "" || res.Header.Get("Sunset") != "Sun, 31 Jan 2027 00:00:00 GMT" ||
		!strings.Contains(res.Header.Get("Link"), `rel="successor-version"`) {
		t.Errorf("deprecation signals: %v", res.Header)
	}
}

func TestUpstreamFailures(t *testing.T) {
	dead := deadAddr(t)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer slow.Close()
	h := newHarness(t, 200*time.Millisecond,
		version("dead", "/dead", model.StatePublished, "http://"+dead),
		version("slow", "/slow", model.StatePublished, slow.URL),
		version("none", "/none", model.StatePublished),
		version("gone", "/gone", model.StateRetired, slow.URL),
		version("blocked", "/blocked", model.StateBlocked, slow.URL),
	)
	for _, tc := range []struct {
		name, path string
		status     int
		typ        string
	}{
		{"connection refused", "/dead/items/1", 502, "upstream-connect"},
		{"timeout", "/slow/items/1", 504, "upstream-timeout"},
		{"no upstream", "/none/items/1", 502, "no-upstream"},
		{"retired", "/gone/items/1", 410, "gone/version-retired"},
		{"blocked", "/blocked/items/1", 403, "forbidden/version-blocked"},
		{"undeclared", "/nowhere", 404, "not-found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := get(t, h.srv.URL+tc.path)
			if res.StatusCode != tc.status || res.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, ProblemBase+tc.typ) {
				t.Fatalf("%d %s %s", res.StatusCode, res.Header.Get("Content-Type"), body)
			}
		})
	}
	if es := h.use.ShadowEntries(); len(es) != 1 || es[0].Path != "/nowhere" {
		t.Fatalf("shadow traffic: %+v", es)
	}
}

// deadAddr returns an address nobody listens on. 127.0.0.3, not
// 127.0.0.1: other tests' listeners on 127.0.0.1 can take the freed port
// number, but they never answer on this address.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestRoundRobinAndPassiveHealth(t *testing.T) {
	var hits [2]atomic.Int64
	mk := func(i int) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits[i].Add(1) }))
	}
	a, b := mk(0), mk(1)
	defer a.Close()
	defer b.Close()
	dead := "http://" + deadAddr(t)
	h := newHarness(t, 0, version("rr", "/rr", model.StatePublished, a.URL, b.URL, dead))
	for i := 0; i < 30; i++ {
		// GET is idempotent: a dead target is retried on another one.
		if res, body := get(t, h.srv.URL+"/rr/items/1"); res.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, res.StatusCode, body)
		}
	}
	if hits[0].Load() < 10 || hits[1].Load() < 10 {
		t.Fatalf("uneven balancing: %d / %d", hits[0].Load(), hits[1].Load())
	}
	// POST is not retried: with only a dead target it fails once, as 502.
	h2 := newHarness(t, 0, version("p", "/p", model.StatePublished, dead))
	res, err := http.Post(h2.srv.URL+"/p/items", "application/json", strings.NewReader(`{}`))
	if err != nil || res.StatusCode != 502 {
		t.Fatalf("POST to dead upstream: %v %v", err, res)
	}
	res.Body.Close()
}

// TestSwapUnderLoad changes the configuration many times while requests
// flow: no request may fail.
func TestSwapUnderLoad(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer up.Close()
	base := version("a", "/api", model.StatePublished, up.URL)
	h := newHarness(t, 0, base)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				res, err := cl.Get(h.srv.URL + "/api/items/1")
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	deadline := time.Now().Add(1500 * time.Millisecond)
	swaps := 0
	for time.Now().Before(deadline) {
		extra := version(fmt.Sprintf("x%d", swaps), fmt.Sprintf("/extra%d", swaps), model.StatePublished, up.URL)
		h.swap(t, base, extra)
		swaps++
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() < 100 {
		t.Fatalf("%d failed, %d ok across %d swaps", failed.Load(), ok.Load(), swaps)
	}
	t.Logf("%d requests, 0 failed, %d snapshot swaps", ok.Load(), swaps)
}

func TestAPIKeyAndRateLimitHeaders(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	secret, _, hash := credential.NewAPIKey()
	v := version("k", "/k", model.StatePublished, up.URL)
	v.Policy = model.Policy{Auth: &model.AuthPolicy{Methods: []string{"api_key"}}, RateLimit: &model.RateLimitPolicy{Rate: 2, Period: "1m"}}
	c := ratelimit.NewLocal(ratelimit.LocalOptions{})
	defer c.Close()
	eng := policy.NewEngine(policy.Options{Counter: c})
	eng.Swap(policy.Compile(&policy.Input{Versions: []model.Version{v},
		Apps: []model.Application{{ID: "a", TenantID: "acme", Name: "app"}},
		Keys: []model.APIKey{{ID: "k", TenantID: "acme", AppID: "a", Hash: hash[:]}}}, nil))
	srv := httptest.NewServer(New(Options{Engine: eng}))
	defer srv.Close()
	if res, _ := get(t, srv.URL+"/k/items/1"); res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), "X-API-Key") {
		t.Fatalf("no key: %d %v", res.StatusCode, res.Header)
	}
	for i := 0; i < 2; i++ {
		res, _ := get(t, srv.URL+"/k/items/1", "X-API-Key", secret)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("RateLimit"), `"`) || res.Header.Get("RateLimit-Policy") == "" {
			t.Fatalf("request %d: %d %v", i, res.StatusCode, res.Header)
		}
	}
	res, body := get(t, srv.URL+"/k/items/1", "X-API-Key", secret)
	if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" || !strings.Contains(body, "rate-limited") {
		t.Fatalf("third request: %d %v %s", res.StatusCode, res.Header, body)
	}
}

func TestResponseValidationLogOnly(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id": "not-a-number"}`)
	}))
	defer up.Close()
	spec := `openapi: 3.1.0
info: {title: t, version: "1"}
security: []
paths:
  /items/{id}:
    get:
      operationId: getItem
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {type: object, properties: {id: {type: integer}}}
`
	v := version("r", "/r", model.StatePublished, up.URL)
	v.Bindings.HTTP.Operations = v.Bindings.HTTP.Operations[:1]
	v.Spec = &model.Spec{Format: "openapi", Version: "3.1.0", Content: spec}
	v.Policy.ValidateResponses = "log"
	var logs strings.Builder
	var mu sync.Mutex
	h := newHarness(t, 0, v)
	h.gw.o.Logger = slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	res, body := get(t, h.srv.URL+"/r/items/7")
	if res.StatusCode != 200 || body != `{"id": "not-a-number"}` {
		t.Fatalf("log-only mode changed the response: %d %s", res.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "response does not match") || !strings.Contains(logs.String(), "/body/id") {
		t.Fatalf("mismatch not logged: %s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
