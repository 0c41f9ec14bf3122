package mqttgw

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetgate/fleetgate/internal/policy"
)

// runV5Suite is the MQTT 5 end-to-end suite; it runs against the embedded
// broker and against each proxy setup, which must behave the same.
func runV5Suite(t *testing.T, f *fixture, addr string) {
	backend := mustV5(t, addr, f.backend, f.key[f.backend])
	dev1 := mustV5(t, addr, f.dev1, f.key[f.dev1])

	t.Run("allowed publish reaches an allowed subscriber", func(t *testing.T) {
		if c := backend.sub(t, "fleet/+/telemetry", 1); c != 1 {
			t.Fatalf("SUBACK %#x, want granted QoS 1", c)
		}
		if c := dev1.pub(t, "fleet/"+f.dev1+"/telemetry", `{"temp": 21.5}`, nil); c != 0 {
			t.Fatalf("PUBACK %#x", c)
		}
		m := backend.expectMsg(t, "fleet/"+f.dev1+"/telemetry")
		if string(m.Payload) != `{"temp": 21.5}` {
			t.Fatalf("payload %q", m.Payload)
		}
	})
	t.Run("publish on another device's topic is 0x87", func(t *testing.T) {
		if c := dev1.pub(t, "fleet/"+f.dev2+"/telemetry", `{"temp": 1}`, nil); c != 0x87 {
			t.Fatalf("PUBACK %#x, want 0x87", c)
		}
	})
	t.Run("undeclared topic is 0x87 and shadow traffic", func(t *testing.T) {
		topic := "fleet/" + f.dev1 + "/secret"
		if c := dev1.pub(t, topic, "x", nil); c != 0x87 {
			t.Fatalf("PUBACK %#x, want 0x87", c)
		}
		if !f.shadowed(topic) {
			t.Fatalf("no shadow entry for %s: %+v", topic, f.usage.ShadowEntries())
		}
	})
	t.Run("payload schema violation is 0x99", func(t *testing.T) {
		if c := dev1.pub(t, "fleet/"+f.dev1+"/telemetry", `{"temp": "hot"}`, nil); c != 0x99 {
			t.Fatalf("PUBACK %#x, want 0x99", c)
		}
	})
	t.Run("rate limit is 0x97", func(t *testing.T) {
		topic := "fleet/" + f.dev1 + "/alerts"
		for i := range 2 {
			if c := dev1.pub(t, topic, "x", nil); c != 0 {
				t.Fatalf("alert %d: PUBACK %#x", i, c)
			}
		}
		if c := dev1.pub(t, topic, "x", nil); c != 0x97 {
			t.Fatalf("third alert: PUBACK %#x, want 0x97", c)
		}
	})
	t.Run("retired channel is 0x87", func(t *testing.T) {
		if c := dev1.pub(t, "old/"+f.dev1+"/data", "x", nil); c != 0x87 {
			t.Fatalf("PUBACK %#x, want 0x87", c)
		}
	})
	t.Run("deprecated channel deliveries carry deprecation properties", func(t *testing.T) {
		if c := backend.sub(t, "legacy/+/status", 1); c != 1 {
			t.Fatalf("SUBACK %#x", c)
		}
		forged := &paho.PublishProperties{User: paho.UserProperties{{Key: "sunset", Value: "never"}, {Key: "k", Value: "v"}}}
		if c := dev1.pub(t, "legacy/"+f.dev1+"/status", "up", forged); c != 0 {
			t.Fatalf("PUBACK %#x", c)
		}
		m := backend.expectMsg(t, "legacy/"+f.dev1+"/status")
		got := map[string][]string{}
		for _, u := range m.Properties.User {
			got[u.Key] = append(got[u.Key], u.Value)
		}
		want := map[string]string{"deprecation": "@1700000000", "sunset": "Wed, 01 Jan 2031 00:00:00 GMT", "successor": "fleet/v1", "k": "v"}
		for k, v := range want {
			if len(got[k]) != 1 || got[k][0] != v {
				t.Errorf("user property %s = %q, want [%q] (all: %v)", k, got[k], v, got)
			}
		}
	})
	t.Run("wildcard subscriptions", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			c      *v5
			filter string
			want   byte
		}{
			{"backend reads all telemetry", backend, "fleet/+/telemetry", 1},
			{"shared group of the backend", backend, "$share/" + f.backend + "-g/fleet/+/telemetry", 1},
			{"shared group of someone else", backend, "$share/thieves/fleet/+/telemetry", 0x87},
			{"device reads its own commands", dev1, "fleet/" + f.dev1 + "/commands", 1},
			{"device reads every device's commands", dev1, "fleet/+/commands", 0x87},
			{"device filter also covering telemetry", dev1, "fleet/" + f.dev1 + "/#", 0x87},
			{"backend everything", backend, "#", 0x87},
			{"undeclared filter", backend, "nothing/+/here", 0x87},
			{"invalid filter", backend, "fleet/#/x", 0x8F},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := tc.c.sub(t, tc.filter, 1); got != tc.want {
					t.Fatalf("SUBACK %#x, want %#x", got, tc.want)
				}
			})
		}
	})
	t.Run("commands reach only their device", func(t *testing.T) {
		dev2 := mustV5(t, addr, f.dev2, f.key[f.dev2])
		if c := dev1.sub(t, "fleet/"+f.dev1+"/commands", 1); c != 1 {
			t.Fatalf("SUBACK %#x", c)
		}
		if c := dev2.sub(t, "fleet/"+f.dev1+"/commands", 1); c != 0x87 {
			t.Fatalf("dev2 SUBACK on dev1's commands %#x, want 0x87", c)
		}
		if c := backend.pub(t, "fleet/"+f.dev1+"/commands", `{"cmd":"lock"}`, nil); c != 0 {
			t.Fatalf("PUBACK %#x", c)
		}
		dev1.expectMsg(t, "fleet/"+f.dev1+"/commands")
		if c := dev1.pub(t, "fleet/"+f.dev1+"/commands", "spoof", nil); c != 0x87 {
			t.Fatalf("device publishing a command: PUBACK %#x, want 0x87", c)
		}
	})
}

func TestEmbeddedV5(t *testing.T) {
	f := newFixture(t, "")
	g := startGateway(t, f, nil)
	runV5Suite(t, f, g.Addrs()["tcp"])
}

// TestEmbeddedConnect covers authentication and client id binding.
func TestEmbeddedConnect(t *testing.T) {
	f := newFixture(t, "")
	g := startGateway(t, f, nil)
	runConnectSuite(t, f, g.Addrs()["tcp"])
}

func runConnectSuite(t *testing.T, f *fixture, addr string) {
	for _, tc := range []struct {
		name, clientID, key string
		want                byte
	}{
		{"own id", f.dev1, f.key[f.dev1], 0},
		{"own id with suffix", f.dev1 + "-a", f.key[f.dev1], 0},
		{"no password", f.dev1, "", 0x87},
		{"wrong key", f.dev1, "fgk_" + strings.Repeat("A", 43), 0x86},
		{"not an API key", f.dev1, "hunter2", 0x86},
		{"another device's id", f.dev2, f.key[f.dev1], 0x85},
		{"id extending another's", f.dev2 + "-a", f.key[f.dev1], 0x85},
		{"prefix without dash", f.dev1 + "x", f.key[f.dev1], 0x85},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ca, err := dialV5(t, addr, tc.clientID, tc.key, nil)
			if tc.want == 0 {
				if err != nil {
					t.Fatalf("refused: %v %+v", err, ca)
				}
				_ = c.Disconnect(&paho.Disconnect{})
				return
			}
			if err == nil || ca == nil || ca.ReasonCode != tc.want {
				t.Fatalf("connack %+v err %v, want reason %#x", ca, err, tc.want)
			}
		})
	}
	t.Run("empty id is assigned under the principal", func(t *testing.T) {
		c, ca, err := dialV5(t, addr, "", f.key[f.dev1], nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Disconnect(&paho.Disconnect{})
		if ca.Properties == nil || !strings.HasPrefix(ca.Properties.AssignedClientID, f.dev1+"-") {
			t.Fatalf("assigned client id %+v", ca.Properties)
		}
	})
	t.Run("will on a forbidden topic", func(t *testing.T) {
		will := &paho.WillMessage{Topic: "fleet/" + f.dev2 + "/telemetry", Payload: []byte(`{"temp":1}`), QoS: 1}
		_, ca, err := dialV5(t, addr, f.dev1, f.key[f.dev1], will)
		if err == nil || ca == nil || ca.ReasonCode != 0x87 {
			t.Fatalf("connack %+v err %v, want 0x87", ca, err)
		}
	})
}

// TestEmbeddedRevocation: a revoked key's sessions get DISCONNECT 0x87
// within 1 s of Revalidate.
func TestEmbeddedRevocation(t *testing.T) {
	f := newFixture(t, "")
	g := startGateway(t, f, nil)
	runRevocation(t, f, g, g.Addrs()["tcp"])
}

func runRevocation(t *testing.T, f *fixture, g *Gateway, addr string) {
	dev1 := mustV5(t, addr, f.dev1, f.key[f.dev1])
	dev2 := mustV5(t, addr, f.dev2, f.key[f.dev2])
	v3lost := make(chan struct{}, 1)
	v3 := mustV3(t, addr, f.dev1+"-v3", f.key[f.dev1], func() { v3lost <- struct{}{} })
	defer v3.Disconnect(0)
	f.revoke(t, f.dev1)
	start := time.Now()
	g.Revalidate()
	select {
	case d := <-dev1.disc:
		if d.ReasonCode != 0x87 {
			t.Fatalf("DISCONNECT reason %#x, want 0x87", d.ReasonCode)
		}
	case <-time.After(time.Second):
		t.Fatal("revoked MQTT 5 session still connected after 1 s")
	}
	select {
	case <-v3lost:
	case <-time.After(time.Second):
		t.Fatal("revoked MQTT 3.1.1 session still connected after 1 s")
	}
	t.Logf("revoked sessions closed in %v", time.Since(start))
	if c := dev2.pub(t, "fleet/"+f.dev2+"/telemetry", `{"temp":3}`, nil); c != 0 {
		t.Fatalf("unrevoked session affected: PUBACK %#x", c)
	}
	if _, ca, err := dialV5(t, addr, f.dev1, f.key[f.dev1], nil); err == nil || ca.ReasonCode != 0x86 {
		t.Fatalf("reconnect with a revoked key: %+v %v, want 0x86", ca, err)
	}
}

// TestEmbeddedDeliveryFollowsPolicy: an existing subscription stops
// receiving when a new snapshot no longer allows it.
func TestEmbeddedDeliveryFollowsPolicy(t *testing.T) {
	f := newFixture(t, "")
	g := startGateway(t, f, nil)
	addr := g.Addrs()["tcp"]
	backend := mustV5(t, addr, f.backend, f.key[f.backend])
	dev1 := mustV5(t, addr, f.dev1, f.key[f.dev1])
	if c := backend.sub(t, "fleet/+/telemetry", 0); c != 0 {
		t.Fatalf("SUBACK %#x", c)
	}
	f.swap(t, func(in *policy.Input) {
		op := in.Versions[0].Policy.Operations["subTelemetry"]
		op.Rules = []string{`principal.attributes["role"] == "auditor"`}
		in.Versions[0].Policy.Operations["subTelemetry"] = op
	})
	if c := dev1.pub(t, "fleet/"+f.dev1+"/telemetry", `{"temp":5}`, nil); c != 0 {
		t.Fatalf("PUBACK %#x", c)
	}
	backend.expectNoMsg(t, 300*time.Millisecond)
}

// TestWebSocket: MQTT over WebSocket, in both modes.
func TestWebSocket(t *testing.T) {
	for _, m := range modes(t) {
		t.Run(m.name, func(t *testing.T) {
			f, g := m.f, m.g
			ws := pahov3.NewClientOptions().AddBroker("ws://" + g.Addrs()["ws"]).SetClientID(f.dev1 + "-ws").
				SetUsername("u").SetPassword(f.key[f.dev1]).SetAutoReconnect(false).SetProtocolVersion(4).SetConnectTimeout(5 * time.Second)
			c := pahov3.NewClient(ws)
			if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("connect over websocket: %v", tok.Error())
			}
			defer c.Disconnect(0)
			backend := mustV5(t, g.Addrs()["tcp"], f.backend+"-ws", f.key[f.backend])
			backend.sub(t, "fleet/+/telemetry", 1)
			if tok := c.Publish("fleet/"+f.dev1+"/telemetry", 1, false, `{"temp":7}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("publish over websocket: %v", tok.Error())
			}
			backend.expectMsg(t, "fleet/"+f.dev1+"/telemetry")
		})
	}
}

// TestPublishMediation: Gateway.Publish reaches authorized subscribers
// only.
func TestPublishMediation(t *testing.T) {
	f := newFixture(t, "")
	g := startGateway(t, f, nil)
	runMediation(t, f, g, g.Addrs()["tcp"])
}

func runMediation(t *testing.T, f *fixture, g *Gateway, addr string) {
	dev1 := mustV5(t, addr, f.dev1, f.key[f.dev1])
	if c := dev1.sub(t, "fleet/"+f.dev1+"/commands", 1); c != 1 {
		t.Fatalf("SUBACK %#x", c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, qos := range []byte{0, 1, 2} {
		if err := g.Publish(ctx, "fleet/"+f.dev1+"/commands", []byte(`{"cmd":"honk"}`), qos, false); err != nil {
			t.Fatalf("qos %d: %v", qos, err)
		}
		dev1.expectMsg(t, "fleet/"+f.dev1+"/commands")
	}
	if err := g.Publish(ctx, "fleet/+/commands", nil, 0, false); err == nil {
		t.Fatal("wildcard topic accepted")
	}
}

// mustV3 connects an MQTT 3.1.1 paho client.
func mustV3(t testing.TB, addr, clientID, key string, lost func()) pahov3.Client {
	t.Helper()
	c, err := dialV3(addr, clientID, key, lost)
	if err != nil {
		t.Fatalf("connect %s: %v", clientID, err)
	}
	return c
}

func dialV3(addr, clientID, key string, lost func()) (pahov3.Client, error) {
	o := pahov3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID).SetUsername("u").SetPassword(key).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second).
		SetConnectionLostHandler(func(pahov3.Client, error) {
			if lost != nil {
				lost()
			}
		})
	c := pahov3.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, context.DeadlineExceeded
	}
	return c, tok.Error()
}

// runV3Suite is the MQTT 3.1.1 suite. forbidden311 is the gateway's mode.
func runV3Suite(t *testing.T, f *fixture, addr, forbidden311 string) {
	got := make(chan pahov3.Message, 100)
	backend := mustV3(t, addr, f.backend, f.key[f.backend], nil)
	defer backend.Disconnect(0)
	tok := backend.SubscribeMultiple(map[string]byte{"fleet/+/telemetry": 1, "fleet/+/commands": 1}, func(_ pahov3.Client, m pahov3.Message) { got <- m })
	if !tok.WaitTimeout(5 * time.Second) {
		t.Fatal("no SUBACK")
	}
	res := tok.(*pahov3.SubscribeToken).Result()
	if res["fleet/+/telemetry"] != 1 || res["fleet/+/commands"] != 0x80 {
		t.Fatalf("SUBACK %v, want telemetry 1 and commands 0x80", res)
	}
	lost := make(chan struct{}, 1)
	dev1 := mustV3(t, addr, f.dev1, f.key[f.dev1], func() { lost <- struct{}{} })
	defer dev1.Disconnect(0)
	pub := func(topic, payload string) {
		t.Helper()
		tok := dev1.Publish(topic, 1, false, payload)
		tok.WaitTimeout(2 * time.Second)
	}
	pub("fleet/"+f.dev1+"/telemetry", `{"temp":9}`)
	select {
	case m := <-got:
		if m.Topic() != "fleet/"+f.dev1+"/telemetry" {
			t.Fatalf("topic %s", m.Topic())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("allowed 3.1.1 publish not delivered")
	}
	pub("fleet/"+f.dev2+"/telemetry", `{"temp":9}`)
	switch forbidden311 {
	case "disconnect":
		select {
		case <-lost:
		case <-time.After(2 * time.Second):
			t.Fatal("forbidden 3.1.1 publish did not close the connection")
		}
	case "drop":
		select {
		case m := <-got:
			t.Fatalf("forbidden publish delivered: %s", m.Topic())
		case <-lost:
			t.Fatal("drop mode closed the connection")
		case <-time.After(300 * time.Millisecond):
		}
		if !dev1.IsConnectionOpen() {
			t.Fatal("drop mode closed the connection")
		}
	}
	for _, tc := range []struct {
		name, id, key, want string
	}{
		{"wrong key", f.dev1 + "-b", "fgk_" + strings.Repeat("B", 43), "bad user name or password"},
		{"no password", f.dev1 + "-b", "", "not Authorized"},
		{"foreign client id", f.dev2, f.key[f.dev1], "identifier rejected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dialV3(addr, tc.id, tc.key, nil)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestEmbeddedV311(t *testing.T) {
	for _, mode := range []string{"disconnect", "drop"} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t, "")
			g := startGateway(t, f, func(o *Options) { o.Forbidden311 = mode })
			runV3Suite(t, f, g.Addrs()["tcp"], mode)
		})
	}
}

// TestOptions checks New's validation.
func TestOptions(t *testing.T) {
	eng := policy.NewEngine(policy.Options{})
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no engine", Options{}, "Engine is required"},
		{"bad 3.1.1 mode", Options{Engine: eng, Forbidden311: "ignore"}, "forbidden 3.1.1"},
		{"tiny packets", Options{Engine: eng, MaxPacketSize: 10}, "max packet size"},
		{"tls without config", Options{Engine: eng, TLSAddr: ":0"}, "TLS configuration"},
		{"bad upstream", Options{Engine: eng, Upstream: "http://x"}, "want tcp://host:port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	g, err := New(Options{Engine: eng, TCPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g2, _ := New(Options{Engine: eng, TCPAddr: g.Addrs()["tcp"]})
	if err := g2.Start(); err == nil || !strings.Contains(err.Error(), "--mqtt-addr") {
		t.Fatalf("port in use: %v, want an error naming --mqtt-addr", err)
	}
	_ = g2.Close()
}

// TestRoutesOverlapping covers policy.Snapshot.MQTTRoutesOverlapping and
// MQTTFilterParams (internal/policy/mqtt.go).
func TestRoutesOverlapping(t *testing.T) {
	f := newFixture(t, "")
	s := f.eng.Snapshot()
	for _, tc := range []struct {
		filter string
		want   []string // operation ids
		params string   // deviceId of the first route
	}{
		{"fleet/+/telemetry", []string{"subTelemetry"}, "+"},
		{"fleet/d1/telemetry", []string{"subTelemetry"}, "d1"},
		{"fleet/d1/#", []string{"subCommands", "subTelemetry"}, "d1"},
		{"fleet/#", []string{"subCommands", "subTelemetry"}, "+"},
		{"#", []string{"subCommands", "subStatus", "subTelemetry"}, "+"},
		{"+/+/status", []string{"subStatus"}, "+"},
		{"fleet/+", nil, ""},
		{"fleet//telemetry", nil, ""},
		{"other/#", nil, ""},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			rts := s.MQTTRoutesOverlapping("subscribe", tc.filter)
			var got []string
			for _, rt := range rts {
				got = append(got, rt.OperationID)
			}
			slices.Sort(got)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("routes %v, want %v", got, tc.want)
			}
			if len(rts) > 0 {
				ps := rts[0].MQTTFilterParams(tc.filter, nil)
				if len(ps) != 1 || ps[0].Name != "deviceId" || ps[0].Value != tc.params {
					t.Fatalf("params %+v, want deviceId=%s", ps, tc.params)
				}
			}
		})
	}
}
