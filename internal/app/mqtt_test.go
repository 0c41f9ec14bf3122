package app

import (
	"context"
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

// TestMQTTThroughTheNode wires the MQTT adapter into a node: an
// application configured through the admin API connects with its API key,
// publishes on its own topic, is refused another device's topic, and is
// disconnected within a second once its key is revoked.
func TestMQTTThroughTheNode(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr, cfg.MQTTAddr = t.TempDir(), "127.0.0.1:0", "", "127.0.0.1:0"
	cfg.AdminToken = "fgt_mqtt-node-test-token-0123456789"
	a := startNode(t, cfg)
	adm := func(tok, method, path string, body any) map[string]any {
		t.Helper()
		return adminCall(t, a, tok, method, path, body, 0)
	}
	root := cfg.AdminToken
	webhook := make(chan string, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		webhook <- string(b)
	}))
	defer hook.Close()
	adm(root, "POST", "/operators", map[string]any{"name": "rev", "roles": []string{"reviewer"}})
	rev := createToken(t, a.AdminURL(), root, "rev")
	adm(root, "POST", "/apps", map[string]any{"name": "meter1"})
	keyRes := adm(root, "POST", "/apps/meter1/keys", map[string]any{"name": "k"})
	key, keyID := keyRes["secret"].(string), keyRes["key"].(map[string]any)["id"].(string)
	bind := []any{map[string]any{"param": "deviceId", "equals": "principal.id"}}
	adm(root, "POST", "/apis", map[string]any{"name": "fleet", "owner": "iot"})
	adm(root, "POST", "/apis/fleet/versions", map[string]any{"version": "v1",
		"upstream": map[string]any{"targets": []string{hook.URL}}, // telemetry is forwarded to this webhook
		"bindings": map[string]any{"mqtt": map[string]any{"channels": []any{map[string]any{"topic": "fleet/{deviceId}/telemetry", "action": "publish", "operation_id": "telemetry"}}}},
		"policy":   map[string]any{"operations": map[string]any{"telemetry": map[string]any{"bindings": bind}}}})
	adm(root, "POST", "/apis/fleet/versions/v1/transitions", map[string]any{"to": "in_review"})
	adm(rev, "POST", "/apis/fleet/versions/v1/transitions", map[string]any{"to": "published"})
	for i := 0; i < 100; i++ {
		if rt, _ := a.engine.Snapshot().MatchMQTT("publish", "fleet/meter1/telemetry", nil); rt != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	conn, err := net.DialTimeout("tcp", a.MQTTAddrs()["tcp"], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	disc := make(chan struct{}, 1)
	c := paho.NewClient(paho.ClientConfig{Conn: conn, PacketTimeout: 5 * time.Second,
		OnServerDisconnect: func(*paho.Disconnect) { disc <- struct{}{} },
		OnClientError:      func(error) { disc <- struct{}{} }})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ca, err := c.Connect(ctx, &paho.Connect{ClientID: "meter1", KeepAlive: 0, CleanStart: true,
		Password: []byte(key), PasswordFlag: true}); err != nil {
		t.Fatalf("connect: %v %+v", err, ca)
	}
	pub := func(topic string) byte {
		t.Helper()
		pr, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(`{"kwh":1}`)})
		if pr == nil {
			t.Fatalf("publish %s: %v", topic, err)
		}
		return pr.ReasonCode
	}
	if rc := pub("fleet/meter1/telemetry"); rc != 0 {
		t.Fatalf("own topic: reason 0x%02x", rc)
	}
	select {
	case body := <-webhook:
		if !strings.Contains(body, `"topic":"fleet/meter1/telemetry"`) || !strings.Contains(body, `"payload":{"kwh":1}`) || !strings.Contains(body, `"sender":"app:meter1"`) {
			t.Fatalf("webhook batch: %s", body)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("telemetry was not forwarded to the webhook")
	}
	for i := 0; i < 100; i++ { // the counter follows the webhook's answer
		res, err := http.Get(a.AdminURL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		mb, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(mb), `fleetgate_forwarded_messages_total{result="delivered"} 1`) {
			break
		}
		if i == 99 {
			t.Fatalf("forwarding not counted in /metrics")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rc := pub("fleet/meter2/telemetry"); rc != 0x87 {
		t.Fatalf("another device's topic: reason 0x%02x, want 0x87 Not authorized", rc)
	}
	adm(root, "POST", "/apps/meter1/keys/"+keyID+"/revoke", nil)
	revoked := time.Now()
	select {
	case <-disc:
		t.Logf("disconnected %v after the revocation was committed", time.Since(revoked))
	case <-time.After(time.Second):
		t.Fatal("session of a revoked key still open after 1 s")
	}
}

// TestHTTPCommandToDevice: a backend application sends a command to one
// device through an HTTP operation (authorized by the same engine: only
// fleet-ops may command, and only devices it manages); Fleetgate publishes
// it on the device's command topic, where the device receives it.
func TestHTTPCommandToDevice(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr, cfg.MQTTAddr = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.AdminToken = "fgt_mqtt-command-test-token-01234567"
	a := startNode(t, cfg)
	adm := func(tok, method, path string, body any) map[string]any {
		t.Helper()
		return adminCall(t, a, tok, method, path, body, 0)
	}
	root := cfg.AdminToken
	adm(root, "POST", "/operators", map[string]any{"name": "rev", "roles": []string{"reviewer"}})
	rev := createToken(t, a.AdminURL(), root, "rev")
	adm(root, "POST", "/apps", map[string]any{"name": "meter1"})
	deviceKey := adm(root, "POST", "/apps/meter1/keys", map[string]any{"name": "k"})["secret"].(string)
	adm(root, "POST", "/apps", map[string]any{"name": "fleet-ops"})
	opsKey := adm(root, "POST", "/apps/fleet-ops/keys", map[string]any{"name": "k"})["secret"].(string)
	adm(root, "POST", "/ownerships", map[string]any{"subject": "app:fleet-ops", "object_type": "device", "object_id": "meter1"})
	// Devices receive their own commands over MQTT.
	adm(root, "POST", "/apis", map[string]any{"name": "device-commands", "owner": "iot"})
	adm(root, "POST", "/apis/device-commands/versions", map[string]any{"version": "v1",
		"bindings": map[string]any{"mqtt": map[string]any{"channels": []any{map[string]any{"topic": "fleet/{deviceId}/commands", "action": "subscribe", "operation_id": "receive"}}}},
		"policy":   map[string]any{"operations": map[string]any{"receive": map[string]any{"bindings": []any{map[string]any{"param": "deviceId", "equals": "principal.id"}}}}}})
	// Backends send them over HTTP, to devices they manage.
	adm(root, "POST", "/apis", map[string]any{"name": "commands", "owner": "iot"})
	adm(root, "POST", "/apis/commands/versions", map[string]any{"version": "v1",
		"upstream": map[string]any{"targets": []string{"mqtt:fleet/{deviceId}/commands?qos=1"}},
		"bindings": map[string]any{"http": map[string]any{"base_path": "/v1", "operations": []any{map[string]any{"method": "POST", "path": "/devices/{deviceId}/commands", "operation_id": "send"}}}},
		"policy": map[string]any{"auth": map[string]any{"methods": []string{"api_key"}},
			"operations": map[string]any{"send": map[string]any{"bindings": []any{map[string]any{"param": "deviceId", "owned": "device"}}}}}})
	for _, api := range []string{"device-commands", "commands"} {
		adm(root, "POST", "/apis/"+api+"/versions/v1/transitions", map[string]any{"to": "in_review"})
		adm(rev, "POST", "/apis/"+api+"/versions/v1/transitions", map[string]any{"to": "published"})
	}
	for i := 0; i < 100; i++ {
		if rt, _ := a.engine.Snapshot().MatchHTTP("POST", "/v1/devices/meter1/commands", nil); rt != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := net.DialTimeout("tcp", a.MQTTAddrs()["tcp"], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *paho.Publish, 1)
	c := paho.NewClient(paho.ClientConfig{Conn: conn, PacketTimeout: 5 * time.Second, OnClientError: func(error) {},
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			got <- pr.Packet
			return true, nil
		}}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ca, err := c.Connect(ctx, &paho.Connect{ClientID: "meter1", KeepAlive: 0, CleanStart: true, Password: []byte(deviceKey), PasswordFlag: true}); err != nil {
		t.Fatalf("connect: %v %+v", err, ca)
	}
	defer c.Disconnect(&paho.Disconnect{})
	if sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "fleet/meter1/commands", QoS: 1}}}); err != nil || sa.Reasons[0] > 2 {
		t.Fatalf("subscribe: %v %+v", err, sa)
	}
	send := func(key, device string) int {
		req, _ := http.NewRequest("POST", a.DataURLs()[0]+"/v1/devices/"+device+"/commands", strings.NewReader(`{"reboot":true}`))
		req.Header.Set("X-API-Key", key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if st := send(opsKey, "meter1"); st != 202 {
		t.Fatalf("command from the managing backend: %d", st)
	}
	select {
	case p := <-got:
		if p.Topic != "fleet/meter1/commands" || string(p.Payload) != `{"reboot":true}` {
			t.Fatalf("device received %s %s", p.Topic, p.Payload)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the device did not receive the command")
	}
	if st := send(opsKey, "meter9"); st != 403 {
		t.Fatalf("command to a device fleet-ops does not manage: %d", st)
	}
	if st := send(deviceKey, "meter1"); st != 403 {
		t.Fatalf("a device commanding itself through the backend API: %d", st)
	}
}
