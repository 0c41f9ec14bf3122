package mqttgw

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"

	"github.com/fleetgate/fleetgate/internal/identity/credential"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
	"github.com/fleetgate/fleetgate/internal/ratelimit"
	"github.com/fleetgate/fleetgate/internal/usage"
)

// fleetSpec gives the telemetry channel a payload schema, so its route
// has a Payload validator.
const fleetSpec = `asyncapi: 2.6.0
info: {title: Fleet, version: "1"}
defaultContentType: application/json
channels:
  fleet/{deviceId}/telemetry:
    publish:
      message:
        payload:
          type: object
          required: [temp]
          properties:
            temp: {type: number, minimum: -50, maximum: 150}
`

// fixture is a compiled policy for the tests: devices publish their own
// telemetry and receive their own commands; the backend reads all
// telemetry and sends commands; a deprecated and a retired version.
type fixture struct {
	eng   *policy.Engine
	in    *policy.Input
	usage *usage.Recorder
	// Application names (principal IDs) and their API keys.
	dev1, dev2, backend string
	key                 map[string]string
}

// newFixture builds the policy. Names get a random suffix without '-', so
// tests sharing an external broker do not see each other's topics;
// prefix lets a test namespace them (proxy to a second Fleetgate).
func newFixture(t testing.TB, prefix string) *fixture {
	t.Helper()
	var b [3]byte
	_, _ = rand.Read(b[:])
	sfx := "x" + hex.EncodeToString(b[:])
	f := &fixture{dev1: prefix + "dev1" + sfx, dev2: prefix + "dev2" + sfx, backend: prefix + "backend" + sfx,
		key: map[string]string{}, usage: usage.New()}
	sunset := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	bind := []model.IdentityBinding{{Param: "deviceId", Equals: "principal.id"}}
	backendOnly := []string{`principal.attributes["role"] == "backend"`}
	f.in = &policy.Input{Serial: 1, Versions: []model.Version{
		{ID: "v-fleet", TenantID: "acme", APIName: "fleet", Label: "v1", State: model.StatePublished,
			Spec: &model.Spec{Format: "asyncapi", Version: "2.6.0", Content: fleetSpec},
			Bindings: model.Bindings{MQTT: &model.MQTTBinding{Channels: []model.MQTTChannel{
				{Topic: "fleet/{deviceId}/telemetry", Action: "publish", OperationID: "pubTelemetry"},
				{Topic: "fleet/{deviceId}/telemetry", Action: "subscribe", OperationID: "subTelemetry"},
				{Topic: "fleet/{deviceId}/commands", Action: "subscribe", OperationID: "subCommands"},
				{Topic: "fleet/{deviceId}/commands", Action: "publish", OperationID: "pubCommands"},
				{Topic: "fleet/{deviceId}/alerts", Action: "publish", OperationID: "pubAlerts"},
			}}},
			Policy: model.Policy{Operations: map[string]model.OperationPolicy{
				"pubTelemetry": {Bindings: bind, RateLimit: &model.RateLimitPolicy{Rate: 1 << 30, Period: "1s"}},
				"subTelemetry": {Rules: backendOnly},
				"subCommands":  {Bindings: bind},
				"pubCommands":  {Rules: backendOnly},
				"pubAlerts":    {Bindings: bind, RateLimit: &model.RateLimitPolicy{Rate: 2, Period: "1h"}},
			}}},
		{ID: "v-legacy", TenantID: "acme", APIName: "legacy", Label: "v1", State: model.StateDeprecated,
			Sunset: &sunset, Successor: "fleet/v1", UpdatedAt: time.Unix(1700000000, 0),
			Bindings: model.Bindings{MQTT: &model.MQTTBinding{Channels: []model.MQTTChannel{
				{Topic: "legacy/{deviceId}/status", Action: "publish", OperationID: "pubStatus"},
				{Topic: "legacy/{deviceId}/status", Action: "subscribe", OperationID: "subStatus"},
			}}},
			Policy: model.Policy{Operations: map[string]model.OperationPolicy{
				"pubStatus": {Bindings: bind},
				"subStatus": {Rules: backendOnly},
			}}},
		{ID: "v-old", TenantID: "acme", APIName: "old", Label: "v1", State: model.StateRetired,
			Bindings: model.Bindings{MQTT: &model.MQTTBinding{Channels: []model.MQTTChannel{
				{Topic: "old/{deviceId}/data", Action: "publish", OperationID: "pubOld"},
			}}}},
	}}
	for i, a := range []struct{ name, role string }{{f.dev1, "device"}, {f.dev2, "device"}, {f.backend, "backend"}} {
		id := "app" + string(rune('1'+i))
		f.in.Apps = append(f.in.Apps, model.Application{ID: id, TenantID: "acme", Name: a.name, Attributes: map[string]string{"role": a.role}})
		secret, _, hash := credential.NewAPIKey()
		f.key[a.name] = secret
		f.in.Keys = append(f.in.Keys, model.APIKey{ID: "key-" + id, TenantID: "acme", AppID: id, Hash: hash[:]})
	}
	c := ratelimit.NewLocal(ratelimit.LocalOptions{})
	t.Cleanup(func() { c.Close() })
	f.eng = policy.NewEngine(policy.Options{Counter: c})
	f.swap(t, nil)
	return f
}

// swap applies mut to the input and installs a newly compiled snapshot.
func (f *fixture) swap(t testing.TB, mut func(*policy.Input)) {
	t.Helper()
	if mut != nil {
		mut(f.in)
	}
	f.in.Serial++
	s := policy.Compile(f.in, nil)
	if len(s.Warnings) > 0 {
		t.Fatalf("compile warnings: %v", s.Warnings)
	}
	f.eng.Swap(s)
}

// revoke marks name's API key revoked in a new snapshot.
func (f *fixture) revoke(t testing.TB, name string) {
	now := time.Now()
	f.swap(t, func(in *policy.Input) {
		for _, a := range in.Apps {
			for i := range in.Keys {
				if a.Name == name && in.Keys[i].AppID == a.ID {
					in.Keys[i].RevokedAt = &now
				}
			}
		}
	})
}

func (f *fixture) shadowed(topic string) bool {
	for _, e := range f.usage.ShadowEntries() {
		if e.Protocol == "mqtt" && e.Path == topic {
			return true
		}
	}
	return false
}

func testLogger() *slog.Logger {
	if os.Getenv("FLEETGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startGateway starts a gateway on free loopback ports.
func startGateway(t testing.TB, f *fixture, mut func(*Options)) *Gateway {
	t.Helper()
	o := Options{Engine: f.eng, Usage: f.usage, Logger: testLogger(), TCPAddr: "127.0.0.1:0", WSAddr: "127.0.0.1:0"}
	if mut != nil {
		mut(&o)
	}
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

// v5 is a paho MQTT 5 client that collects what it receives.
type v5 struct {
	*paho.Client
	msgs chan *paho.Publish
	disc chan *paho.Disconnect
}

// dialV5 connects an MQTT 5 client; the CONNACK is returned with the
// error when the server refuses.
func dialV5(t testing.TB, addr, clientID, key string, will *paho.WillMessage) (*v5, *paho.Connack, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := &v5{msgs: make(chan *paho.Publish, 1000), disc: make(chan *paho.Disconnect, 1)}
	c.Client = paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			select {
			case c.msgs <- pr.Packet:
			default:
			}
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) { c.disc <- d },
		OnClientError:      func(error) {},
		PacketTimeout:      5 * time.Second,
	})
	rm := uint16(100)
	// KeepAlive 0 everywhere paho.golang connects in tests: its pinger
	// writes its first PINGREQ from its own goroutine, unsynchronized with
	// the client's writes, and under load it lands inside a PUBLISH (see
	// TestTLSClientCertificate); the broker then rightly drops the session.
	cp := &paho.Connect{ClientID: clientID, KeepAlive: 0, CleanStart: true, Username: "informational", UsernameFlag: true,
		Properties: &paho.ConnectProperties{ReceiveMaximum: &rm}, WillMessage: will}
	if key != "" {
		cp.Password, cp.PasswordFlag = []byte(key), true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, cp)
	if err != nil {
		return nil, ca, err
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return c, ca, nil
}

// mustV5 connects or fails the test.
func mustV5(t testing.TB, addr, clientID, key string) *v5 {
	t.Helper()
	c, ca, err := dialV5(t, addr, clientID, key, nil)
	if err != nil {
		t.Fatalf("connect %s: %v (connack %+v)", clientID, err, ca)
	}
	return c
}

func (c *v5) sub(t testing.TB, filter string, qos byte) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}})
	if sa == nil {
		t.Fatalf("subscribe %s: %v", filter, err)
	}
	return sa.Reasons[0]
}

// pub publishes with QoS 1 and returns the PUBACK reason code.
func (c *v5) pub(t testing.TB, topic, payload string, props *paho.PublishProperties) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pr, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(payload), Properties: props})
	if pr == nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
	return pr.ReasonCode
}

// expectMsg waits for a message on topic.
func (c *v5) expectMsg(t testing.TB, topic string) *paho.Publish {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-c.msgs:
			if m.Topic == topic {
				return m
			}
		case <-deadline:
			t.Fatalf("no message on %s within 5 s", topic)
			return nil
		}
	}
}

// expectNoMsg checks that nothing arrives for a while.
func (c *v5) expectNoMsg(t testing.TB, within time.Duration) {
	t.Helper()
	select {
	case m := <-c.msgs:
		t.Fatalf("unexpected message on %s: %s", m.Topic, m.Payload)
	case <-time.After(within):
	}
}

// raw is a raw TCP client: bytes in, packets out.
type raw struct {
	t       testing.TB
	c       net.Conn
	r       *packetReader
	version byte
}

func dialRaw(t testing.TB, addr string, version byte) *raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	r := newPacketReader(c, 1<<20)
	r.version = version
	return &raw{t: t, c: c, r: r, version: version}
}

func (r *raw) send(b []byte) {
	r.t.Helper()
	_ = r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// next reads the next packet within d.
func (r *raw) next(d time.Duration) (packets.Packet, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(d))
	return r.r.read()
}

// closed reports whether the server closes the connection within d,
// skipping packets sent before that (returned).
func (r *raw) closed(d time.Duration) ([]packets.Packet, bool) {
	var got []packets.Packet
	deadline := time.Now().Add(d)
	for range 64 {
		_ = r.c.SetReadDeadline(deadline)
		pk, err := r.r.read()
		if err != nil {
			var ne net.Error
			return got, !(errors.As(err, &ne) && ne.Timeout())
		}
		got = append(got, pk)
	}
	return got, false
}

// connect sends CONNECT and expects CONNACK 0.
func (r *raw) connect(clientID, key string) {
	r.t.Helper()
	r.send(connectBytes(r.version, clientID, key, nil))
	pk, err := r.next(5 * time.Second)
	if err != nil || pk.FixedHeader.Type != packets.Connack || pk.ReasonCode != 0 {
		r.t.Fatalf("connack: %+v %v", pk, err)
	}
}

// enc encodes a packet for version.
func enc(t testing.TB, version byte, pk packets.Packet) []byte {
	t.Helper()
	pk.ProtocolVersion = version
	var b bytes.Buffer
	if err := encodePacket(&pk, &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func connectPacket(version byte, clientID, key string) packets.Packet {
	name := []byte("MQTT")
	if version == 3 {
		name = []byte("MQIsdp")
	}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: version,
		Connect: packets.ConnectParams{ProtocolName: name, Clean: true, Keepalive: 30, ClientIdentifier: clientID}}
	if key != "" {
		pk.Connect.PasswordFlag, pk.Connect.Password = true, []byte(key)
		pk.Connect.UsernameFlag, pk.Connect.Username = true, []byte("u")
	}
	return pk
}

// connectBytes encodes a CONNECT; mut may change it first.
func connectBytes(version byte, clientID, key string, mut func(*packets.Packet)) []byte {
	pk := connectPacket(version, clientID, key)
	if mut != nil {
		mut(&pk)
	}
	var b bytes.Buffer
	_ = encodePacket(&pk, &b)
	return b.Bytes()
}

func publishPacket(topic, payload string, qos byte, id uint16) packets.Packet {
	return packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, TopicName: topic,
		Payload: []byte(payload), PacketID: id}
}

func subscribePacket(id uint16, filters ...string) packets.Packet {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: id}
	for _, f := range filters {
		pk.Filters = append(pk.Filters, packets.Subscription{Filter: f, Qos: 1})
	}
	return pk
}
