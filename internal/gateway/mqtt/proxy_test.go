package mqttgw

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/identity/credential"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
)

// mosquittoAddr is the broker CI runs (.ci/run starts it when missing).
const mosquittoAddr = "127.0.0.1:1883"

// requireMosquitto fails the test, with the reason, when Mosquitto is not
// there: proxy mode must be tested against a real broker.
func requireMosquitto(t testing.TB) {
	t.Helper()
	c, err := net.DialTimeout("tcp", mosquittoAddr, 2*time.Second)
	if err != nil {
		t.Fatalf("Mosquitto is not reachable at %s (%v): proxy-mode tests need a real broker there "+
			"(Debian package mosquitto; .ci/run starts it)", mosquittoAddr, err)
	}
	_ = c.Close()
}

// startProxyToMosquitto runs a proxy-mode gateway in front of Mosquitto.
func startProxyToMosquitto(t testing.TB) (*fixture, *Gateway) {
	requireMosquitto(t)
	f := newFixture(t, "")
	g := startGateway(t, f, func(o *Options) {
		o.Upstream = "tcp://" + mosquittoAddr
		o.UpstreamUsername, o.UpstreamPassword = "fleetgate", "unused-by-anonymous-mosquitto"
	})
	return f, g
}

// startUpstreamFleetgate starts an embedded-mode Fleetgate to be the
// external broker of another, proxy-mode Fleetgate (a tiered deployment).
// It knows one identity, "edge", the proxy's; the proxy's upstream client
// ids are "edge-<tenant>/<id>", so its client id rule holds at both tiers.
// Its policy lets "edge" use every channel (the fixture's, and extra
// templates): the edge tier enforces the device rules.
func startUpstreamFleetgate(t testing.TB, extra ...string) (*Gateway, string) {
	t.Helper()
	secret, _, hash := credential.NewAPIKey()
	var chans []model.MQTTChannel
	for _, tpl := range append([]string{"fleet/{deviceId}/telemetry", "fleet/{deviceId}/commands", "fleet/{deviceId}/alerts",
		"fleet/{deviceId}/replies", "legacy/{deviceId}/status", "old/{deviceId}/data"}, extra...) {
		chans = append(chans, model.MQTTChannel{Topic: tpl, Action: "publish"}, model.MQTTChannel{Topic: tpl, Action: "subscribe"})
	}
	in := &policy.Input{
		Versions: []model.Version{{ID: "core", TenantID: "hub", APIName: "core", Label: "v1", State: model.StatePublished,
			Bindings: model.Bindings{MQTT: &model.MQTTBinding{Channels: chans}},
			Policy:   model.Policy{Rules: []string{`principal.id == "edge"`}}}},
		Apps: []model.Application{{ID: "edge", TenantID: "hub", Name: "edge"}},
		Keys: []model.APIKey{{ID: "k-edge", TenantID: "hub", AppID: "edge", Hash: hash[:]}},
	}
	eng := policy.NewEngine(policy.Options{})
	eng.Swap(policy.Compile(in, nil))
	g, err := New(Options{Engine: eng, Logger: testLogger(), TCPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g, secret
}

// startProxyToFleetgate runs two gateways: a proxy-mode edge in front of
// an embedded-mode upstream.
func startProxyToFleetgate(t testing.TB, mut func(*Options)) (*fixture, *Gateway, *Gateway) {
	up, key := startUpstreamFleetgate(t)
	f := newFixture(t, "edge-")
	g := startGateway(t, f, func(o *Options) {
		o.Upstream = "tcp://" + up.Addrs()["tcp"]
		o.UpstreamUsername, o.UpstreamPassword = "edge", key
		if mut != nil {
			mut(o)
		}
	})
	return f, g, up
}

// runProxySuites runs every end-to-end suite through a proxy. Revocation
// runs last: it revokes dev1.
func runProxySuites(t *testing.T, f *fixture, g *Gateway) {
	addr := g.Addrs()["tcp"]
	t.Run("v5", func(t *testing.T) { runV5Suite(t, f, addr) })
	t.Run("connect", func(t *testing.T) { runConnectSuite(t, f, addr) })
	t.Run("v311", func(t *testing.T) { runV3Suite(t, f, addr, "disconnect") })
	t.Run("mediation", func(t *testing.T) { runMediation(t, f, g, addr) })
	t.Run("revocation", func(t *testing.T) { runRevocation(t, f, g, addr) })
}

func TestProxyMosquitto(t *testing.T) {
	f, g := startProxyToMosquitto(t)
	runProxySuites(t, f, g)
}

func TestProxyFleetgate(t *testing.T) {
	f, g, _ := startProxyToFleetgate(t, nil)
	runProxySuites(t, f, g)
}

func TestProxyV311Drop(t *testing.T) {
	f, g, _ := startProxyToFleetgate(t, func(o *Options) { o.Forbidden311 = "drop" })
	runV3Suite(t, f, g.Addrs()["tcp"], "drop")
}

// TestProxyUpstreamDown: devices get 0x88 Server unavailable (3.1.1: 3)
// when the broker cannot be reached.
func TestProxyUpstreamDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	_ = l.Close()
	f := newFixture(t, "")
	g := startGateway(t, f, func(o *Options) { o.Upstream = "tcp://" + dead })
	_, ca, err := dialV5(t, g.Addrs()["tcp"], f.dev1, f.key[f.dev1], nil)
	if err == nil || ca == nil || ca.ReasonCode != 0x88 {
		t.Fatalf("connack %+v err %v, want 0x88", ca, err)
	}
	if _, err := dialV3(g.Addrs()["tcp"], f.dev1, f.key[f.dev1], nil); err == nil || !strings.Contains(err.Error(), "navailable") {
		t.Fatalf("3.1.1: %v, want server unavailable", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := g.Publish(ctx, "fleet/x/commands", []byte("{}"), 1, false); err == nil {
		t.Fatal("mediated publish to a dead broker succeeded")
	}
}
