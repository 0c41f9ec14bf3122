package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/fleetgate/fleetgate/internal/config"
)

// TestDeviceTokensAndPSKsRevokeAtOnce: a device authenticates with a
// device token as an HTTP bearer and as its MQTT password; revoking the
// token, then suspending the device, refuses its next HTTP request and
// disconnects its MQTT session within a second. A PSK reaches the
// snapshot's DTLS lookup and leaves it when revoked.
func TestDeviceTokensAndPSKsRevokeAtOnce(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("X-Fleetgate-Subject"))
	}))
	defer up.Close()
	cfg := config.Default()
	cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr, cfg.MQTTAddr = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.AdminToken = "fgt_devcreds-node-test-token-012345"
	cfg.DeviceKEK = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32))
	a := startNode(t, cfg)
	root := cfg.AdminToken
	adm := func(method, path string, body any, want int) map[string]any {
		t.Helper()
		return adminCall(t, a, root, method, path, body, want)
	}
	adm("POST", "/operators", map[string]any{"name": "rev", "roles": []string{"reviewer"}}, 201)
	rev := createToken(t, a.AdminURL(), root, "rev")
	bind := []any{map[string]any{"param": "id", "equals": "principal.device"}}
	adm("POST", "/apis", map[string]any{"name": "meters", "owner": "energy"}, 201)
	adm("POST", "/apis/meters/versions", map[string]any{"version": "v1", "upstream": map[string]any{"targets": []string{up.URL}},
		"bindings": map[string]any{
			"http": map[string]any{"base_path": "/v1", "operations": []any{map[string]any{"method": "POST", "path": "/meters/{id}/readings", "operation_id": "push"}}},
			"mqtt": map[string]any{"channels": []any{map[string]any{"topic": "meters/{id}/telemetry", "action": "publish", "operation_id": "telemetry"}}}},
		"policy": map[string]any{"auth": map[string]any{"methods": []string{"device_token"}},
			"operations": map[string]any{"push": map[string]any{"bindings": bind}, "telemetry": map[string]any{"bindings": bind}}}}, 201)
	adm("POST", "/apis/meters/versions/v1/transitions", map[string]any{"to": "in_review"}, 200)
	adminCall(t, a, rev, "POST", "/apis/meters/versions/v1/transitions", map[string]any{"to": "published"}, 200)
	adm("POST", "/devices", map[string]any{"id": "m1", "model": "em-300", "status": "active"}, 201)

	// One keep-alive HTTP client for the whole test: revocation must bite
	// on a connection that is already open.
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	push := func(token, meter string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", a.DataURLs()[0]+"/v1/meters/"+meter+"/readings", strings.NewReader(`{"kwh":1}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	mint := func() (token, jti string) {
		t.Helper()
		m := adm("POST", "/devices/m1/tokens", map[string]any{"ttl": "10m"}, 201)
		return m["token"].(string), m["credential"].(map[string]any)["id"].(string)
	}
	// waitHTTP polls until the snapshot that follows an admin change is
	// served (bounded: 100 × 20 ms).
	waitHTTP := func(token string, want int) {
		t.Helper()
		var st int
		for i := 0; i < 100; i++ {
			if st, _ = push(token, "m1"); st == want {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("HTTP with the device token: %d, want %d", st, want)
	}
	connect := func(user, token string) (*paho.Client, chan struct{}, error) {
		t.Helper()
		conn, err := net.DialTimeout("tcp", a.MQTTAddrs()["tcp"], 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		disc := make(chan struct{}, 2)
		c := paho.NewClient(paho.ClientConfig{Conn: conn, PacketTimeout: 5 * time.Second,
			OnServerDisconnect: func(*paho.Disconnect) { disc <- struct{}{} },
			OnClientError:      func(error) { disc <- struct{}{} }})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = c.Connect(ctx, &paho.Connect{ClientID: "m1", KeepAlive: 0, CleanStart: true,
			Username: user, UsernameFlag: true, Password: []byte(token), PasswordFlag: true})
		if err != nil {
			conn.Close()
		}
		return c, disc, err
	}
	publish := func(c *paho.Client, topic string) byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		pr, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(`{"kwh":1}`)})
		if pr == nil {
			t.Fatalf("publish %s: %v", topic, err)
		}
		return pr.ReasonCode
	}
	within := func(disc chan struct{}, what string) {
		t.Helper()
		start := time.Now()
		select {
		case <-disc:
			t.Logf("%s: MQTT session closed %v after the commit", what, time.Since(start))
		case <-time.After(time.Second):
			t.Fatalf("%s: MQTT session still open after 1 s", what)
		}
	}

	tok1, jti1 := mint()
	waitHTTP(tok1, 200)
	if st, body := push(tok1, "m1"); st != 200 || body != "device:m1" {
		t.Fatalf("device token over HTTP: %d %q", st, body)
	}
	if st, _ := push(tok1, "m2"); st != 403 {
		t.Fatalf("another meter: %d, want 403", st)
	}
	if _, _, err := connect("m2", tok1); err == nil {
		t.Fatal("MQTT CONNECT with the token under another username accepted")
	}
	c, disc, err := connect("m1", tok1)
	if err != nil {
		t.Fatalf("MQTT CONNECT with the device token: %v", err)
	}
	if rc := publish(c, "meters/m1/telemetry"); rc != 0 {
		t.Fatalf("own topic: 0x%02x", rc)
	}
	if rc := publish(c, "meters/m2/telemetry"); rc != 0x87 {
		t.Fatalf("another meter's topic: 0x%02x, want 0x87", rc)
	}

	// A PSK reaches the snapshot's DTLS lookup with its key...
	created := adm("POST", "/devices/m1/psks", nil, 201)
	identity, pskID := created["psk"].(map[string]any)["identity"].(string), created["psk"].(map[string]any)["id"].(string)
	want, _ := hex.DecodeString(created["key"].(string))
	var got []byte
	for i := 0; i < 100 && got == nil; i++ {
		if k, p, ok := a.engine.Snapshot().PSK(identity, time.Now()); ok && p.Device == "m1" {
			got = k
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("PSK lookup: %x, want the created key", got)
	}

	// Revoking the token: the session ends within 1 s, the next request on
	// the open keep-alive connection is refused.
	adm("POST", "/devices/m1/tokens/"+jti1+"/revoke", map[string]any{"reason": "keyCompromise"}, 200)
	within(disc, "token revoked")
	if st, _ := push(tok1, "m1"); st != 401 {
		t.Fatalf("revoked token over HTTP: %d, want 401", st)
	}
	if _, _, err := connect("m1", tok1); err == nil {
		t.Fatal("MQTT CONNECT with a revoked token accepted")
	}
	// Both refusals are a revoked credential still trying: a finding that
	// names the device and the token's id, never the token.
	var objs []any
	for _, f := range adm("GET", "/security/findings", nil, 200)["findings"].([]any) {
		if m := f.(map[string]any); m["id"] == "revoked-credential-attempts" {
			objs = m["objects"].([]any)
		}
	}
	if len(objs) != 2 || !strings.Contains(fmt.Sprint(objs), "device:m1 device_token:"+jti1) ||
		!strings.Contains(fmt.Sprint(objs), "(http: ") || !strings.Contains(fmt.Sprint(objs), "(mqtt: ") || strings.Contains(fmt.Sprint(objs), tok1) {
		t.Fatalf("revoked-credential-attempts objects: %v", objs)
	}
	// ...and revoking the PSK removes it from the lookup.
	adm("POST", "/devices/m1/psks/"+pskID+"/revoke", nil, 200)
	for i := 0; i < 100; i++ {
		if _, _, ok := a.engine.Snapshot().PSK(identity, time.Now()); !ok {
			break
		}
		if i == 99 {
			t.Fatal("revoked PSK still served")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Suspending the device ends the session of a fresh, unrevoked token.
	tok2, _ := mint()
	waitHTTP(tok2, 200)
	c2, disc2, err := connect("m1", tok2)
	if err != nil {
		t.Fatalf("MQTT CONNECT with the second token: %v", err)
	}
	defer c2.Disconnect(&paho.Disconnect{})
	adm("PATCH", "/devices/m1", map[string]any{"status": "suspended", "reason": "lost"}, 200)
	within(disc2, "device suspended")
	if st, _ := push(tok2, "m1"); st != 401 {
		t.Fatalf("token of a suspended device over HTTP: %d, want 401", st)
	}
	// Minting for a suspended device is refused.
	adm("POST", "/devices/m1/tokens", nil, 409)
}
