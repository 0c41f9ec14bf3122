package app

import (
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/config"
	"github.com/fleetgate/fleetgate/internal/store/pgtest"
)

const reviewSpec = `openapi: 3.1.0
info: {title: Meters, version: "1.0.0"}
servers: [{url: "https://meters.example.com/v1"}]
security: [{key: []}]
components:
  securitySchemes:
    key: {type: apiKey, in: header, name: X-API-Key}
paths:
  /meters/{meterId}:
    get:
      operationId: getMeter
      responses: {"200": {description: ok}}
`

// TestScheduledPublicationLoop: with --review-publish-interval set, the
// node's own loop publishes an approved version once its publish_at has
// come, on both store backends.
func TestScheduledPublicationLoop(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			const root = "fgt_review-loop-token-0123456789abcdef"
			cfg := config.Default()
			cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr, cfg.AdminToken = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", root
			if backend == "postgres" {
				cfg.Store = pgtest.SchemaURL(t)
			}
			cfg.ReviewPublishInterval = 100 * time.Millisecond
			a := startNode(t, cfg)
			tok := func(name, role string) string {
				adminCall(t, a, root, "POST", "/operators", map[string]any{"name": name, "roles": []string{role}}, 201)
				return adminCall(t, a, root, "POST", "/tokens", map[string]any{"name": name, "operator": name}, 201)["secret"].(string)
			}
			ann, rita := tok("ann", "author"), tok("rita", "reviewer")
			adminCall(t, a, ann, "POST", "/apis", map[string]any{"name": "meters", "owner": "energy"}, 201)
			adminCall(t, a, ann, "POST", "/apis/meters/versions", map[string]any{"version": "v1", "spec": reviewSpec,
				"policy": map[string]any{"operations": map[string]any{"getMeter": map[string]any{"bindings": []map[string]any{{"param": "meterId", "owned": "meter"}}}}}}, 201)
			adminCall(t, a, ann, "POST", "/apis/meters/versions/v1/transitions", map[string]any{"to": "in_review"}, 200)
			at := time.Now().Add(1500 * time.Millisecond).UTC().Truncate(time.Second).Add(time.Second)
			adminCall(t, a, rita, "POST", "/apis/meters/versions/v1/review/approve", map[string]any{"publish_at": at.Format(time.RFC3339)}, 200)
			state := ""
			for i := 0; i < 300 && state != "published"; i++ { // hang guard: 30 s
				state = adminCall(t, a, ann, "GET", "/apis/meters/versions/v1", nil, 200)["state"].(string)
				if state == "published" && time.Now().Before(at) {
					t.Fatalf("published before %s", at)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if state != "published" {
				t.Fatalf("not published by the loop: %s", state)
			}
			recs := adminCall(t, a, root, "GET", "/audit?actor=system/review-scheduler", nil, 200)["items"].([]any)
			if len(recs) != 1 || recs[0].(map[string]any)["action"] != "version.transition" {
				t.Fatalf("audit: %v", recs)
			}
		})
	}
}
