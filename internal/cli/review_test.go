package cli

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fgapp "github.com/fleetgate/fleetgate/internal/app"
	"github.com/fleetgate/fleetgate/internal/config"
)

const reviewTestSpec = `openapi: 3.1.0
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

// TestReviewCommands drives `fleetgate review` against a real node (SQLite,
// admin API on 127.0.0.1): the commands, their tables, -o json, and the
// refusals the server makes.
func TestReviewCommands(t *testing.T) {
	const root = "fgt_cli-review-root-token-0123456789ab"
	cfg := config.Default()
	cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr, cfg.AdminToken = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", root
	cfg.ReviewPublishInterval = 0 // the test drives nothing in the background
	node, err := fgapp.New(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Shutdown(context.Background()) })
	as := func(tok string, args ...string) cliResult {
		t.Helper()
		return runCLI(t, runOpts{env: map[string]string{EnvServer: node.AdminURL(), EnvToken: tok}}, args...)
	}
	ok := func(r cliResult) string {
		t.Helper()
		if r.err != nil {
			t.Fatalf("command failed: %v\n%s", r.err, r.all())
		}
		return r.stdout
	}
	token := func(name string, roles ...string) string {
		args := []string{"operators", "create", name}
		for _, r := range roles {
			args = append(args, "--role", r)
		}
		ok(as(root, args...))
		return strings.TrimSpace(ok(as(root, "tokens", "create", "--name", name, "--operator", name)))
	}
	ann, rita, rob := token("ann", "author", "reviewer"), token("rita", "reviewer"), token("rob", "reviewer")
	dir := t.TempDir()
	specFile, policyFile := filepath.Join(dir, "spec.yaml"), filepath.Join(dir, "policy.yaml")
	_ = os.WriteFile(specFile, []byte(reviewTestSpec), 0o600)
	_ = os.WriteFile(policyFile, []byte("operations:\n  getMeter:\n    bindings: [{param: meterId, owned: meter}]\n"), 0o600)
	ok(as(ann, "apis", "create", "meters", "--owner", "energy"))
	for _, v := range []string{"v1", "v2"} {
		ok(as(ann, "versions", "create", "meters", v, "--spec", specFile, "--policy", policyFile))
		ok(as(ann, "versions", "transition", "meters", v, "--to", "in_review", "--reason", "ready"))
	}
	later := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)

	tests := []struct {
		name    string
		token   string
		args    []string
		wantOut []string // substrings of stdout
		wantErr string
	}{
		{name: "settings default", token: ann, args: []string{"review", "settings"},
			wantOut: []string{"Approvals required:  1", "Approvers:           any reviewer"}},
		{name: "settings set needs admin", token: rita, args: []string{"review", "settings", "set", "--approvals", "2"}, wantErr: "needs the role admin"},
		{name: "settings set refuses 0 before sending", token: root, args: []string{"review", "settings", "set", "--approvals", "0"}, wantErr: "--approvals must be at least 1"},
		{name: "settings set names an unknown approver", token: root, args: []string{"review", "settings", "set", "--approvals", "2", "--approver", "ghost"},
			wantErr: "/approvers/0: no operator ghost"},
		{name: "settings set", token: root, args: []string{"review", "settings", "set", "--approvals", "2", "--approver", "rita", "--approver", "rob"},
			wantOut: []string{"Approvals required:  2", "Approvers:           rita, rob", "Updated by:          default/admin"}},
		{name: "the author cannot approve", token: ann, args: []string{"review", "approve", "meters", "v1"}, wantErr: "default/ann is the author of meters/v1"},
		{name: "comment with an anchor", token: rita, args: []string{"review", "comment", "meters", "v1", "-m", "meter ids are serials?", "--operation", "getMeter", "--pointer", "/paths/~1meters~1{meterId}/get"},
			wantOut: []string{"Commented on meters/v1 (review round 1)."}},
		{name: "comment anchored at nothing", token: rita, args: []string{"review", "comment", "meters", "v1", "-m", "x", "--pointer", "/paths/~1nope"},
			wantErr: "/pointer: nothing at /paths/~1nope"},
		{name: "first approval", token: rita, args: []string{"review", "approve", "meters", "v1", "-m", "fine"},
			wantOut: []string{"Approved meters/v1 (review round 1: 1 of 2 approvals).\n"}},
		{name: "approving twice", token: rita, args: []string{"review", "approve", "meters", "v1"}, wantErr: "already approved review round 1"},
		{name: "bad publish time is refused locally", token: rob, args: []string{"review", "approve", "meters", "v1", "--publish-at", "friday"}, wantErr: `invalid --publish-at "friday"`},
		{name: "second approval schedules", token: rob, args: []string{"review", "approve", "meters", "v1", "--publish-at", later},
			wantOut: []string{"Approved meters/v1 (review round 1: 2 of 2 approvals). Publication scheduled for " + later + "."}},
		{name: "show", token: ann, args: []string{"review", "show", "meters", "v1"},
			wantOut: []string{"State:       in_review", "Round:       1", "Approvals:   2 of 2 (default/rita, default/rob)", "Scheduled:   " + later + " (by default/rob)",
				"Diff:        no predecessor", "Lint findings:", "Discussion:", "getMeter /paths/~1meters~1{meterId}/get", "meter ids are serials?"}},
		{name: "request changes needs a message", token: rob, args: []string{"review", "request-changes", "meters", "v2"}, wantErr: `required flag(s) "message" not set`},
		{name: "request changes", token: rob, args: []string{"review", "request-changes", "meters", "v2", "-m", "add 429"},
			wantOut: []string{"Requested changes to meters/v2; it is a draft again"}},
		{name: "request changes of a draft", token: rob, args: []string{"review", "request-changes", "meters", "v2", "-m", "again"}, wantErr: "only a version in review"},
		{name: "declare a co-author", token: ann, args: []string{"review", "co-authors", "meters", "v2", "--add", "rita"}, wantOut: []string{"Declared rita a co-author of meters/v2."}},
		{name: "list co-authors", token: ann, args: []string{"review", "co-authors", "meters", "v2"}, wantOut: []string{"CO-AUTHOR", "default/rita  declared  default/ann"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := as(tc.token, tc.args...)
			if tc.wantErr != "" {
				if r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q\n%s", r.err, tc.wantErr, r.all())
				}
				return
			}
			out := ok(r)
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(r.all(), tc.token) {
				t.Fatal("the token was printed")
			}
		})
	}

	t.Run("show -o json is the server's answer", func(t *testing.T) {
		var m map[string]any
		if err := json.Unmarshal([]byte(ok(as(rita, "review", "show", "meters", "v1", "-o", "json"))), &m); err != nil {
			t.Fatal(err)
		}
		if m["round"].(float64) != 1 || len(m["approvals"].([]any)) != 2 || m["scheduled"] == nil {
			t.Fatalf("json: %v", m)
		}
	})

	t.Run("a refused publication exits non-zero and says why", func(t *testing.T) {
		ok(as(root, "review", "settings", "set", "--approvals", "1"))
		// v1 is approved and scheduled; v3 collides with it once v1 is live.
		if outs, err := node.PublishScheduled(context.Background(), time.Now().Add(72*time.Hour)); err != nil || len(outs) != 1 || outs[0].Result != "published" {
			t.Fatalf("scheduler: %+v %v", outs, err)
		}
		ok(as(ann, "versions", "create", "meters", "v3", "--spec", specFile, "--policy", policyFile))
		ok(as(ann, "versions", "transition", "meters", "v3", "--to", "in_review", "--reason", "ready"))
		r := as(rita, "review", "approve", "meters", "v3")
		if r.err == nil || !strings.Contains(r.err.Error(), "meters/v3 was not published: operation-collision") ||
			!strings.Contains(r.stdout, "Approved meters/v3 (review round 1: 1 of 1 approvals).") {
			t.Fatalf("refused publication: %v\n%s", r.err, r.all())
		}
	})
}
