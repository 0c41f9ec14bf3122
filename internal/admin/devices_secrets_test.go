package admin_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/app"
	"github.com/fleetgate/fleetgate/internal/config"
	"github.com/fleetgate/fleetgate/internal/identity/devtoken"
	"github.com/fleetgate/fleetgate/internal/store"
)

// kekEnv is a real node with a device KEK, so PSKs and device tokens can
// be created, and a data-plane listener for the JWKS.
func kekEnv(t *testing.T) *env {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr, cfg.AdminToken = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", rootToken
	cfg.DeviceKEK = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	return &env{t: t, url: a.AdminURL(), app: a, dir: cfg.DataDir, http: &http.Client{Timeout: 30 * time.Second}}
}

func problemType(t *testing.T, r resp) string {
	t.Helper()
	var p struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("not a problem: %s", r.body)
	}
	return strings.TrimPrefix(p.Type, "https://fleetgate.dev/problems/")
}

func TestDeviceSecretsBadInput(t *testing.T) {
	e := kekEnv(t)
	e.must(201, rootToken, "POST", "/devices", map[string]any{"id": "m1", "status": "active"})
	e.must(201, rootToken, "POST", "/devices", map[string]any{"id": "m2", "status": "suspended"})
	e.must(201, rootToken, "POST", "/devices", map[string]any{"id": "m3", "status": "active"})
	e.must(200, rootToken, "PATCH", "/devices/m3", map[string]any{"status": "decommissioned", "reason": "scrapped"})
	tok := e.must(201, rootToken, "POST", "/devices/m1/tokens", nil)["credential"].(map[string]any)["id"].(string)
	psk := e.must(201, rootToken, "POST", "/devices/m1/psks", map[string]any{"identity": "default/m1-chosen"})["psk"].(map[string]any)["id"].(string)
	auditor := e.operator("default", "audrey", "auditor")
	tests := []struct {
		name         string
		token        string
		method, path string
		body         any
		status       int
		kind         string
		pointer      string
	}{
		{"ttl too long", rootToken, "POST", "/devices/m1/tokens", map[string]any{"ttl": "25h"}, 422, "validation", "/ttl"},
		{"ttl too short", rootToken, "POST", "/devices/m1/tokens", map[string]any{"ttl": "30s"}, 422, "validation", "/ttl"},
		{"ttl not a duration", rootToken, "POST", "/devices/m1/tokens", map[string]any{"ttl": "soon"}, 400, "", ""},
		{"unknown field", rootToken, "POST", "/devices/m1/tokens", map[string]any{"expires": "1h"}, 400, "", ""},
		{"token for unknown device", rootToken, "POST", "/devices/nope/tokens", nil, 404, "not-found", ""},
		{"token for suspended device", rootToken, "POST", "/devices/m2/tokens", nil, 409, "device-not-active", ""},
		{"token for decommissioned device", rootToken, "POST", "/devices/m3/tokens", nil, 409, "device-not-active", ""},
		{"psk for unknown device", rootToken, "POST", "/devices/nope/psks", nil, 404, "not-found", ""},
		{"psk for decommissioned device", rootToken, "POST", "/devices/m3/psks", nil, 409, "device-not-active", ""},
		{"psk identity without tenant prefix", rootToken, "POST", "/devices/m1/psks", map[string]any{"identity": "m1-psk"}, 422, "validation", "/identity"},
		{"psk identity of another tenant", rootToken, "POST", "/devices/m1/psks", map[string]any{"identity": "globex/m1"}, 422, "validation", "/identity"},
		{"psk identity with spaces", rootToken, "POST", "/devices/m1/psks", map[string]any{"identity": "default/a b"}, 422, "validation", "/identity"},
		{"psk identity too long", rootToken, "POST", "/devices/m1/psks", map[string]any{"identity": "default/" + strings.Repeat("x", 121)}, 422, "validation", "/identity"},
		{"psk identity taken", rootToken, "POST", "/devices/m1/psks", map[string]any{"identity": "default/m1-chosen"}, 409, "conflict", ""},
		{"revoke unknown token", rootToken, "POST", "/devices/m1/tokens/nope/revoke", nil, 404, "not-found", ""},
		{"revoke a psk as a token", rootToken, "POST", "/devices/m1/tokens/" + psk + "/revoke", nil, 404, "not-found", ""},
		{"revoke a token as a psk", rootToken, "POST", "/devices/m1/psks/" + tok + "/revoke", nil, 404, "not-found", ""},
		{"revoke with a bad reason", rootToken, "POST", "/devices/m1/tokens/" + tok + "/revoke", map[string]any{"reason": "because"}, 422, "validation", "/reason"},
		{"auditor cannot mint", auditor, "POST", "/devices/m1/tokens", nil, 403, "forbidden", ""},
		{"auditor cannot create a psk", auditor, "POST", "/devices/m1/psks", nil, 403, "forbidden", ""},
		{"auditor cannot revoke", auditor, "POST", "/devices/m1/tokens/" + tok + "/revoke", nil, 403, "forbidden", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call(tc.token, tc.method, tc.path, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			kind := problemType(t, r)
			if tc.kind != "" && kind != tc.kind {
				t.Fatalf("problem type %q, want %q", kind, tc.kind)
			}
			if tc.pointer != "" {
				if ps := problemPointers(t, r); len(ps) != 1 || ps[0] != tc.pointer {
					t.Fatalf("pointers %v, want %s", ps, tc.pointer)
				}
			}
		})
	}
	// Nothing was half-written by the refused requests: one token, one PSK.
	if items := e.must(200, rootToken, "GET", "/devices/m1/credentials", nil)["items"].([]any); len(items) != 2 {
		t.Fatalf("credentials after refused requests: %d", len(items))
	}
}

// TestDeviceSecretsShownOnce: a PSK's key and a token are in the create
// answer and nowhere else (lists, audit log, store); every change is
// audited; the JWKS on the data plane verifies the token.
func TestDeviceSecretsShownOnce(t *testing.T) {
	e := kekEnv(t)
	e.must(201, rootToken, "POST", "/devices", map[string]any{"id": "m1", "status": "active"})
	created := e.must(201, rootToken, "POST", "/devices/m1/psks", nil)
	key := created["key"].(string)
	identity := created["psk"].(map[string]any)["identity"].(string)
	pskID := created["psk"].(map[string]any)["id"].(string)
	if raw, err := hex.DecodeString(key); err != nil || len(raw) != 32 {
		t.Fatalf("PSK key %q: %v", key, err)
	}
	if !strings.HasPrefix(identity, "default/m1/") {
		t.Fatalf("default identity %q", identity)
	}
	minted := e.must(201, rootToken, "POST", "/devices/m1/tokens", map[string]any{"ttl": "2h"})
	token := minted["token"].(string)
	jti := minted["credential"].(map[string]any)["id"].(string)
	exp, _ := time.Parse(time.RFC3339, minted["expires_at"].(string))
	if d := time.Until(exp); d < 2*time.Hour-time.Minute || d > 2*time.Hour {
		t.Fatalf("expires_at %v", exp)
	}
	second := e.must(201, rootToken, "POST", "/devices/m1/tokens", nil)["token"].(string)

	// The JWKS on the data plane verifies both tokens (one lazily created
	// key signs them), and the claims are what the issue asks for.
	res, err := http.Get(e.app.DataURLs()[0] + "/.well-known/fleetgate/default/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []devtoken.JWK `json:"keys"`
	}
	_ = json.NewDecoder(res.Body).Decode(&set)
	res.Body.Close()
	if res.StatusCode != 200 || len(set.Keys) != 1 || set.Keys[0].Kty != "OKP" || set.Keys[0].Crv != "Ed25519" {
		t.Fatalf("jwks: %d %+v", res.StatusCode, set)
	}
	pub, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].X)
	for _, tk := range []string{token, second} {
		p, err := devtoken.Parse(tk)
		if err != nil || p.KID != set.Keys[0].Kid || p.Verify(ed25519.PublicKey(pub), time.Now()) != nil {
			t.Fatalf("token does not verify with the JWKS: %v", err)
		}
		if p.Claims.Issuer != "fleetgate" || p.Claims.Subject != "m1" || p.Claims.Tenant != "default" || p.Claims.ID == "" {
			t.Fatalf("claims %+v", p.Claims)
		}
	}
	if p, _ := devtoken.Parse(token); p.Claims.ID != jti || p.Claims.Expiry != exp.Unix() {
		t.Fatalf("jti/exp %+v, credential %s %v", p.Claims, jti, exp)
	}
	// Unknown tenants get an empty set, not a 404.
	if res, err := http.Get(e.app.DataURLs()[0] + "/.well-known/fleetgate/nobody/jwks.json"); err != nil || res.StatusCode != 200 {
		t.Fatalf("jwks of an unknown tenant: %v %v", err, res)
	}

	e.must(200, rootToken, "POST", "/devices/m1/tokens/"+jti+"/revoke", map[string]any{"reason": "keyCompromise"})
	e.must(200, rootToken, "POST", "/devices/m1/psks/"+pskID+"/revoke", nil)
	psks := e.call(rootToken, "GET", "/devices/m1/psks", nil)
	toks := e.call(rootToken, "GET", "/devices/m1/tokens", nil)
	var pl, tl struct {
		Items []map[string]any `json:"items"`
	}
	_ = json.Unmarshal(psks.body, &pl)
	_ = json.Unmarshal(toks.body, &tl)
	if len(pl.Items) != 1 || pl.Items[0]["identity"] != identity || pl.Items[0]["revoked_at"] == nil || pl.Items[0]["key"] != nil {
		t.Fatalf("psk list: %s", psks.body)
	}
	if len(tl.Items) != 2 || tl.Items[0]["kind"] != "token" || tl.Items[0]["id"] != jti || tl.Items[0]["revoke_reason"] != "keyCompromise" || tl.Items[1]["revoked_at"] != nil {
		t.Fatalf("token list: %s", toks.body)
	}
	if r := e.call(rootToken, "GET", "/devices/m1/tokens?limit=1", nil); !strings.Contains(string(r.body), `"next":"`+jti+`"`) {
		t.Fatalf("token page 1: %s", r.body)
	}
	audit := e.call(rootToken, "GET", "/audit?limit=1000", nil)
	for _, action := range []string{"psk.create", "psk.revoke", "device_token_key.create", "device_token.create", "device_token.revoke"} {
		if !strings.Contains(string(audit.body), `"action":"`+action+`"`) {
			t.Errorf("no %s audit record", action)
		}
	}
	if v := e.must(200, rootToken, "GET", "/audit/verify", nil); v["ok"] != true {
		t.Errorf("audit chain: %v", v)
	}
	// The secrets are nowhere but in the create answers: not in lists,
	// the audit log, nor the database file (PSK key sealed, token never
	// stored).
	sig := token[strings.LastIndexByte(token, '.')+1:]
	rawKey, _ := hex.DecodeString(key)
	dump := string(psks.body) + string(toks.body) + string(audit.body)
	files, _ := filepath.Glob(filepath.Join(e.dir, "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		dump += string(b)
	}
	for name, s := range map[string]string{"psk hex": key, "psk raw": string(rawKey), "psk base64": base64.StdEncoding.EncodeToString(rawKey), "token signature": sig} {
		if strings.Contains(dump, s) {
			t.Errorf("%s found outside its create answer", name)
		}
	}
	_ = e.app.Store().View(context.Background(), func(tx store.Tx) error {
		rows, err := tx.ListDevicePSKs("default", "m1", store.Page{})
		if err != nil || len(rows) != 1 || bytes.Contains(rows[0].SealedKey, rawKey) {
			t.Errorf("stored psk: %v", err)
		}
		return nil
	})
}

// TestDeviceSecretsTenantIsolation: another tenant's operator cannot see,
// mint for or revoke a device's credentials.
func TestDeviceSecretsTenantIsolation(t *testing.T) {
	e := kekEnv(t)
	e.must(201, rootToken, "POST", "/devices", map[string]any{"id": "m1", "status": "active"})
	jti := e.must(201, rootToken, "POST", "/devices/m1/tokens", nil)["credential"].(map[string]any)["id"].(string)
	other := e.tenantWithAdmin("globex", "gadmin", "admin")
	for _, c := range []struct{ method, path string }{
		{"POST", "/devices/m1/tokens"}, {"GET", "/devices/m1/tokens"}, {"POST", "/devices/m1/tokens/" + jti + "/revoke"},
		{"POST", "/devices/m1/psks"}, {"GET", "/devices/m1/psks"},
	} {
		if r := e.call(other, c.method, c.path, nil); r.status != 404 {
			t.Errorf("%s %s from another tenant: %d %s", c.method, c.path, r.status, r.body)
		}
	}
}
