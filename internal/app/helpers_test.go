package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/fleetgate/fleetgate/internal/config"
)

// startNode builds and starts a node from cfg; it is shut down when the
// test ends.
func startNode(t testing.TB, cfg config.Config) *App {
	t.Helper()
	a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatalf("node: %v (PostgreSQL and Redis must run when configured; .ci/run starts them)", err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	return a
}

// adminCall sends a JSON request to a's admin API and decodes the JSON
// answer. want is the expected status; 0 accepts any 2xx. hdr are extra
// header name/value pairs (e.g. Fleetgate-Tenant).
func adminCall(t testing.TB, a *App, tok, method, path string, body any, want int, hdr ...string) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, a.AdminURL()+"/admin/v1"+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(res.Body)
	if (want == 0 && res.StatusCode >= 300) || (want != 0 && res.StatusCode != want) {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, res.StatusCode, want, rb)
	}
	var m map[string]any
	_ = json.Unmarshal(rb, &m)
	return m
}
