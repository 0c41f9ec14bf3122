package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"strings"
	"testing"

	fgapp "github.com/fleetgate/fleetgate/internal/app"
	"github.com/fleetgate/fleetgate/internal/config"
	"github.com/fleetgate/fleetgate/internal/identity/devtoken"
)

// TestDevicePSKAndTokenCommands runs `devices psk` and `devices token`
// against a real node: secrets go to stdout alone, once; lists never show
// them; revoke marks them; bad flags fail before any request.
func TestDevicePSKAndTokenCommands(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr = t.TempDir(), "127.0.0.1:0", ""
	cfg.AdminToken = "fgt_cli-devcreds-test-token-0123456"
	cfg.DeviceKEK = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	node, err := fgapp.New(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Shutdown(context.Background()) })
	o := runOpts{env: map[string]string{EnvServer: node.AdminURL(), EnvToken: cfg.AdminToken}}
	run := func(args ...string) cliResult {
		t.Helper()
		return runCLI(t, o, args...)
	}
	if r := run("devices", "create", "m1", "--status", "active"); r.err != nil {
		t.Fatal(r.all())
	}

	r := run("devices", "psk", "create", "m1", "--identity", "default/m1-a")
	key := strings.TrimSpace(r.stdout)
	if raw, err := hex.DecodeString(key); r.err != nil || err != nil || len(raw) != 32 || !strings.Contains(r.stderr, "will not be shown again") {
		t.Fatalf("psk create: %q %s", key, r.all())
	}
	r = run("devices", "psk", "list", "m1")
	if r.err != nil || !strings.Contains(r.stdout, "default/m1-a") || !strings.Contains(r.stdout, "active") || strings.Contains(r.all(), key) {
		t.Fatalf("psk list: %s", r.all())
	}
	pskID := strings.Fields(strings.Split(r.stdout, "\n")[1])[0]
	if r := run("devices", "psk", "revoke", "m1", pskID, "--reason", "keyCompromise"); r.err != nil || !strings.Contains(r.stdout, "Revoked psk") {
		t.Fatalf("psk revoke: %s", r.all())
	}
	if r := run("devices", "psk", "list", "m1"); !strings.Contains(r.stdout, "revoked (keyCompromise)") {
		t.Fatalf("psk list after revoke: %s", r.all())
	}

	r = run("devices", "token", "create", "m1", "--ttl", "30m")
	tok := strings.TrimSpace(r.stdout)
	p, err := devtoken.Parse(tok)
	if r.err != nil || err != nil || p.Claims.Subject != "m1" || p.Claims.Expiry-p.Claims.IssuedAt != 1800 {
		t.Fatalf("token create: %v %s", err, r.all())
	}
	r = run("devices", "token", "list", "m1")
	if r.err != nil || !strings.Contains(r.stdout, p.Claims.ID) || strings.Contains(r.all(), tok) {
		t.Fatalf("token list: %s", r.all())
	}
	if r := run("devices", "token", "revoke", "m1", p.Claims.ID); r.err != nil || !strings.Contains(r.stdout, "(unspecified)") {
		t.Fatalf("token revoke: %s", r.all())
	}
	if r := run("devices", "token", "list", "m1"); !strings.Contains(r.stdout, "revoked (unspecified)") {
		t.Fatalf("token list after revoke: %s", r.all())
	}

	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"ttl too long", []string{"devices", "token", "create", "m1", "--ttl", "48h"}, `invalid --ttl "48h"`},
		{"bad reason", []string{"devices", "token", "revoke", "m1", "x", "--reason", "oops"}, `invalid --reason "oops"`},
		{"server refuses a foreign identity", []string{"devices", "psk", "create", "m1", "--identity", "other/x"}, "identity"},
		{"unknown device", []string{"devices", "token", "create", "nope"}, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(tc.args...)
			if r.err == nil || !strings.Contains(r.all(), tc.wantErr) {
				t.Fatalf("got %s, want an error containing %q", r.all(), tc.wantErr)
			}
		})
	}
}
