package app

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/config"
	"github.com/fleetgate/fleetgate/internal/store/pgtest"
)

func redisURL() string {
	if a := os.Getenv("FLEETGATE_TEST_REDIS"); a != "" {
		if len(a) > 8 && a[:8] == "redis://" {
			return a
		}
		return "redis://" + a
	}
	return "redis://127.0.0.1:6379/0"
}

// TestTwoNodesShareStoreAndLimits runs two nodes on one PostgreSQL store
// and one Redis: a rate limit of 10 per minute holds across both nodes.
func TestTwoNodesShareStoreAndLimits(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	pg := pgtest.SchemaURL(t)
	start := func() *App {
		cfg := config.Default()
		cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
		cfg.Store, cfg.RateLimitRedis, cfg.AdminToken = pg, redisURL(), "fgt_cluster-test-token-0123456789ab"
		return startNode(t, cfg)
	}
	a := start()
	root := "fgt_cluster-test-token-0123456789ab"
	do := func(tok, method, path string, body any) map[string]any {
		t.Helper()
		return adminCall(t, a, tok, method, path, body, 0)
	}
	do(root, "POST", "/operators", map[string]any{"name": "rev", "roles": []string{"reviewer"}})
	rev := createToken(t, a.AdminURL(), root, "rev")
	do(root, "POST", "/apps", map[string]any{"name": "meter"})
	key := do(root, "POST", "/apps/meter/keys", map[string]any{"name": "k"})["secret"].(string)
	do(root, "POST", "/apis", map[string]any{"name": "meters", "owner": "energy"})
	do(root, "POST", "/apis/meters/versions", map[string]any{"version": "v1", "upstream": map[string]any{"targets": []string{up.URL}},
		"bindings": map[string]any{"http": map[string]any{"base_path": "/v1", "operations": []any{map[string]any{"method": "GET", "path": "/readings", "operation_id": "readings"}}}},
		"policy":   map[string]any{"auth": map[string]any{"methods": []string{"api_key"}}, "rate_limit": map[string]any{"rate": 10, "period": "1m"}}})
	do(root, "POST", "/apis/meters/versions/v1/transitions", map[string]any{"to": "in_review"})
	do(rev, "POST", "/apis/meters/versions/v1/transitions", map[string]any{"to": "published"})
	// Wait (without spending tokens) until node A serves the route, then
	// start node B, whose first snapshot comes from the shared store.
	for i := 0; i < 100; i++ {
		if rt, _ := a.engine.Snapshot().MatchHTTP("GET", "/v1/readings", nil); rt != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b := start()
	call := func(n *App) int {
		req, _ := http.NewRequest("GET", n.DataURLs()[0]+"/v1/readings", nil)
		req.Header.Set("X-API-Key", key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	counts := map[int]int{}
	for i := 0; i < 30; i++ {
		n := a
		if i%2 == 1 {
			n = b
		}
		counts[call(n)]++
	}
	if counts[200] != 10 || counts[429] != 20 {
		t.Fatalf("across two nodes: %v, want exactly 10 allowed", counts)
	}
}
