package app

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/fleetgate/fleetgate/internal/config"
)

// replyDevice is an MQTT 5 device (paho) that receives its commands.
type replyDevice struct {
	*paho.Client
	cmds chan *paho.Publish
}

func connectReplyDevice(t *testing.T, addr, id, key string) *replyDevice {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d := &replyDevice{cmds: make(chan *paho.Publish, 10)}
	d.Client = paho.NewClient(paho.ClientConfig{Conn: conn, PacketTimeout: 5 * time.Second, OnClientError: func(error) {},
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			d.cmds <- pr.Packet
			return true, nil
		}}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ca, err := d.Connect(ctx, &paho.Connect{ClientID: id, KeepAlive: 0, CleanStart: true, Password: []byte(key), PasswordFlag: true}); err != nil {
		t.Fatalf("connect %s: %v %+v", id, err, ca)
	}
	t.Cleanup(func() { _ = d.Disconnect(&paho.Disconnect{}) })
	if sa, err := d.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "fleet/" + id + "/commands", QoS: 1}}}); err != nil || sa.Reasons[0] > 2 {
		t.Fatalf("subscribe %s: %v %+v", id, err, sa)
	}
	return d
}

// reply publishes on topic with the correlation data and returns the
// PUBACK reason code.
func (d *replyDevice) reply(t *testing.T, topic, payload, ctype string, corr []byte) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pr, err := d.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(payload),
		Properties: &paho.PublishProperties{CorrelationData: corr, ContentType: ctype}})
	if pr == nil {
		t.Fatalf("reply on %s: %v", topic, err)
	}
	return pr.ReasonCode
}

func (d *replyDevice) command(t *testing.T) *paho.Publish {
	t.Helper()
	select {
	case p := <-d.cmds:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("the device received no command")
		return nil
	}
}

// TestHTTPCommandWaitsForReply: a backend's HTTP command to a device whose
// operation declares a reply topic is answered with the device's MQTT 5
// reply (200, the reply's content type); another device cannot answer in
// its place, neither on the device's reply topic (refused by the engine)
// nor on its own (not matched), so without the device's reply the backend
// gets 504 problem+json after the target's timeout.
func TestHTTPCommandWaitsForReply(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir, cfg.AdminAddr, cfg.HTTPAddr, cfg.MQTTAddr = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.AdminToken = "fgt_mqtt-reply-test-token-0123456789"
	a := startNode(t, cfg)
	adm := func(tok, method, path string, body any) map[string]any {
		t.Helper()
		return adminCall(t, a, tok, method, path, body, 0)
	}
	root := cfg.AdminToken
	adm(root, "POST", "/operators", map[string]any{"name": "rev", "roles": []string{"reviewer"}})
	rev := createToken(t, a.AdminURL(), root, "rev")
	keys := map[string]string{}
	for _, app := range []string{"meter1", "meter2", "fleet-ops"} {
		adm(root, "POST", "/apps", map[string]any{"name": app})
		keys[app] = adm(root, "POST", "/apps/"+app+"/keys", map[string]any{"name": "k"})["secret"].(string)
	}
	for _, dev := range []string{"meter1", "meter2"} {
		adm(root, "POST", "/ownerships", map[string]any{"subject": "app:fleet-ops", "object_type": "device", "object_id": dev})
	}
	own := []any{map[string]any{"param": "deviceId", "equals": "principal.id"}}
	adm(root, "POST", "/apis", map[string]any{"name": "device-commands", "owner": "iot"})
	adm(root, "POST", "/apis/device-commands/versions", map[string]any{"version": "v1",
		"bindings": map[string]any{"mqtt": map[string]any{"channels": []any{
			map[string]any{"topic": "fleet/{deviceId}/commands", "action": "subscribe", "operation_id": "receive"},
			map[string]any{"topic": "fleet/{deviceId}/replies", "action": "publish", "operation_id": "reply"}}}},
		"policy": map[string]any{"operations": map[string]any{"receive": map[string]any{"bindings": own}, "reply": map[string]any{"bindings": own}}}})
	adm(root, "POST", "/apis", map[string]any{"name": "commands", "owner": "iot"})
	adm(root, "POST", "/apis/commands/versions", map[string]any{"version": "v1",
		"upstream": map[string]any{"targets": []string{"mqtt:fleet/{deviceId}/commands?qos=1&reply=fleet/{deviceId}/replies&timeout=1s"}},
		"bindings": map[string]any{"http": map[string]any{"base_path": "/v1", "operations": []any{map[string]any{"method": "POST", "path": "/devices/{deviceId}/commands", "operation_id": "send"}}}},
		"policy": map[string]any{"auth": map[string]any{"methods": []string{"api_key"}},
			"operations": map[string]any{"send": map[string]any{"bindings": []any{map[string]any{"param": "deviceId", "owned": "device"}}}}}})
	// A reply topic no channel declares: no device could ever answer.
	adm(root, "POST", "/apis", map[string]any{"name": "undeclared", "owner": "iot"})
	adm(root, "POST", "/apis/undeclared/versions", map[string]any{"version": "v1",
		"upstream": map[string]any{"targets": []string{"mqtt:fleet/{deviceId}/commands?reply=fleet/{deviceId}/answers"}},
		"bindings": map[string]any{"http": map[string]any{"base_path": "/undeclared", "operations": []any{map[string]any{"method": "POST", "path": "/devices/{deviceId}/commands", "operation_id": "send"}}}},
		"policy": map[string]any{"auth": map[string]any{"methods": []string{"api_key"}},
			"operations": map[string]any{"send": map[string]any{"bindings": []any{map[string]any{"param": "deviceId", "owned": "device"}}}}}})
	for _, api := range []string{"device-commands", "commands", "undeclared"} {
		adm(root, "POST", "/apis/"+api+"/versions/v1/transitions", map[string]any{"to": "in_review"})
		adm(rev, "POST", "/apis/"+api+"/versions/v1/transitions", map[string]any{"to": "published"})
	}
	for i := 0; i < 100; i++ {
		if rt, _ := a.engine.Snapshot().MatchHTTP("POST", "/v1/devices/meter1/commands", nil); rt != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	addr := a.MQTTAddrs()["tcp"]
	meter1 := connectReplyDevice(t, addr, "meter1", keys["meter1"])
	meter2 := connectReplyDevice(t, addr, "meter2", keys["meter2"])

	type answer struct {
		status int
		ctype  string
		body   string
	}
	var sendTo func(base, device string) chan answer
	send := func(device string) chan answer { return sendTo("/v1", device) }
	sendTo = func(base, device string) chan answer {
		done := make(chan answer, 1)
		go func() {
			req, _ := http.NewRequest("POST", a.DataURLs()[0]+base+"/devices/"+device+"/commands", strings.NewReader(`{"read":"kwh"}`))
			req.Header.Set("X-API-Key", keys["fleet-ops"])
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- answer{status: -1, body: err.Error()}
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			done <- answer{res.StatusCode, res.Header.Get("Content-Type"), string(b)}
		}()
		return done
	}
	wait := func(done chan answer) answer {
		t.Helper()
		select {
		case ans := <-done:
			return ans
		case <-time.After(10 * time.Second):
			t.Fatal("no HTTP answer within 10 s")
			return answer{}
		}
	}
	forge := func(corr []byte) {
		t.Helper()
		if rc := meter2.reply(t, "fleet/meter1/replies", `{"kwh":0}`, "application/json", corr); rc != 0x87 {
			t.Fatalf("meter2 replying on meter1's reply topic: 0x%02x, want 0x87", rc)
		}
		if rc := meter2.reply(t, "fleet/meter2/replies", `{"kwh":0}`, "application/json", corr); rc != 0 {
			t.Fatalf("meter2 on its own reply topic: 0x%02x", rc)
		}
	}

	t.Run("reply matched", func(t *testing.T) {
		done := send("meter1")
		cmd := meter1.command(t)
		if string(cmd.Payload) != `{"read":"kwh"}` || cmd.Properties == nil || cmd.Properties.ResponseTopic != "fleet/meter1/replies" ||
			len(cmd.Properties.CorrelationData) == 0 {
			t.Fatalf("command %s with properties %+v", cmd.Payload, cmd.Properties)
		}
		forge(cmd.Properties.CorrelationData)
		if rc := meter1.reply(t, cmd.Properties.ResponseTopic, `{"kwh":1234}`, "application/json", cmd.Properties.CorrelationData); rc != 0 {
			t.Fatalf("meter1's reply: 0x%02x", rc)
		}
		if ans := wait(done); ans.status != 200 || ans.ctype != "application/json" || ans.body != `{"kwh":1234}` {
			t.Fatalf("answer %+v, want 200 application/json {\"kwh\":1234}", ans)
		}
	})
	t.Run("no reply: 504", func(t *testing.T) {
		start := time.Now()
		done := send("meter1")
		cmd := meter1.command(t)
		forge(cmd.Properties.CorrelationData)
		ans := wait(done)
		var p struct {
			Type   string `json:"type"`
			Status int    `json:"status"`
		}
		_ = json.Unmarshal([]byte(ans.body), &p)
		if ans.status != 504 || ans.ctype != "application/problem+json" || p.Type != "https://fleetgate.dev/problems/reply-timeout" ||
			time.Since(start) < 900*time.Millisecond {
			t.Fatalf("answer %+v after %v, want 504 reply-timeout after 1 s", ans, time.Since(start))
		}
	})
	t.Run("undeclared reply channel: 502", func(t *testing.T) {
		ans := wait(sendTo("/undeclared", "meter1"))
		if ans.status != 502 || !strings.Contains(ans.body, "problems/no-reply-channel") {
			t.Fatalf("answer %+v, want 502 no-reply-channel", ans)
		}
		select {
		case p := <-meter1.cmds:
			t.Fatalf("a command was published although no reply could come: %s", p.Payload)
		case <-time.After(100 * time.Millisecond):
		}
	})
	t.Run("reply without content type", func(t *testing.T) {
		done := send("meter2")
		cmd := meter2.command(t)
		if rc := meter2.reply(t, cmd.Properties.ResponseTopic, "raw", "", cmd.Properties.CorrelationData); rc != 0 {
			t.Fatalf("meter2's reply: 0x%02x", rc)
		}
		if ans := wait(done); ans.status != 200 || ans.ctype != "application/octet-stream" || ans.body != "raw" {
			t.Fatalf("answer %+v", ans)
		}
	})
}
