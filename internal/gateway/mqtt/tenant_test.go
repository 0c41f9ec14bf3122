package mqttgw

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/fleetgate/fleetgate/internal/identity/credential"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
)

// tenants is a policy with two tenants, acme and beta, that both have a
// device named dev, a device named other and a backend; each tenant
// declares its own telemetry channel. Names carry a random suffix so runs
// against the shared Mosquitto do not see each other.
type tenants struct {
	eng                 *policy.Engine
	in                  *policy.Input
	dev, other, backend string
	topic               map[string]string // tenant -> telemetry template
	key                 map[string]string // "tenant/name" -> API key
}

func newTenants(t testing.TB) *tenants {
	t.Helper()
	var b [3]byte
	_, _ = rand.Read(b[:])
	sfx := hex.EncodeToString(b[:])
	ts := &tenants{dev: "dev" + sfx, other: "other" + sfx, backend: "backend" + sfx,
		topic: map[string]string{"acme": "ta" + sfx + "/{deviceId}/telemetry", "beta": "tb" + sfx + "/{deviceId}/telemetry"},
		key:   map[string]string{}, in: &policy.Input{Serial: 1}}
	bind := []model.IdentityBinding{{Param: "deviceId", Equals: "principal.id"}}
	for _, tenant := range []string{"acme", "beta"} {
		ts.in.Versions = append(ts.in.Versions, model.Version{ID: "v-" + tenant, TenantID: tenant, APIName: "fleet", Label: "v1",
			State: model.StatePublished,
			Bindings: model.Bindings{MQTT: &model.MQTTBinding{Channels: []model.MQTTChannel{
				{Topic: ts.topic[tenant], Action: "publish", OperationID: "pub"},
				{Topic: ts.topic[tenant], Action: "subscribe", OperationID: "sub"}}}},
			Policy: model.Policy{Operations: map[string]model.OperationPolicy{
				"pub": {Bindings: bind},
				"sub": {Rules: []string{`principal.attributes["role"] == "backend"`}}}}})
		for _, name := range []string{ts.dev, ts.other, ts.backend} {
			id := tenant + "-" + name
			role := "device"
			if name == ts.backend {
				role = "backend"
			}
			ts.in.Apps = append(ts.in.Apps, model.Application{ID: id, TenantID: tenant, Name: name, Attributes: map[string]string{"role": role}})
			secret, _, hash := credential.NewAPIKey()
			ts.key[tenant+"/"+name] = secret
			ts.in.Keys = append(ts.in.Keys, model.APIKey{ID: "k-" + id, TenantID: tenant, AppID: id, Hash: hash[:]})
		}
	}
	ts.eng = policy.NewEngine(policy.Options{})
	ts.swap(t, nil)
	return ts
}

func (ts *tenants) swap(t testing.TB, mut func(*policy.Input)) {
	t.Helper()
	if mut != nil {
		mut(ts.in)
	}
	ts.in.Serial++
	s := policy.Compile(ts.in, nil)
	if len(s.Warnings) > 0 {
		t.Fatalf("compile warnings: %v", s.Warnings)
	}
	ts.eng.Swap(s)
}

// concrete is tenant's telemetry topic of device.
func (ts *tenants) concrete(tenant, device string) string {
	return strings.Replace(ts.topic[tenant], "{deviceId}", device, 1)
}

// TestTenantChannelsAreExclusive: a channel belongs to one tenant; the
// same template declared by a second tenant is left out of the snapshot
// as a collision (and refused at publish by the lifecycle's collision
// check), so "identical topic names" never belong to two tenants.
func TestTenantChannelsAreExclusive(t *testing.T) {
	ts := newTenants(t)
	in := *ts.in
	in.Versions = append(append([]model.Version(nil), in.Versions...), model.Version{ID: "v-beta-copy", TenantID: "beta",
		APIName: "copy", Label: "v1", State: model.StatePublished,
		Bindings: model.Bindings{MQTT: &model.MQTTBinding{Channels: []model.MQTTChannel{{Topic: ts.topic["acme"], Action: "subscribe"}}}}})
	s := policy.Compile(&in, nil)
	if len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], "collides") {
		t.Fatalf("warnings %v, want one collision", s.Warnings)
	}
}

// runTenants: two tenants' devices with the same client id hold sessions
// side by side (the broker keys them "<tenant>/<id>"); a client id of
// another identity is refused in either tenant; a device sees only its own
// client id; a tenant's subscriber never receives the other tenant's
// messages and cannot subscribe to its topics; revoking one tenant's
// device leaves the other tenant's namesake connected.
func runTenants(t *testing.T, ts *tenants, g *Gateway, addr string) {
	k := func(tenant, name string) string { return ts.key[tenant+"/"+name] }
	acmeDev := mustV5(t, addr, ts.dev, k("acme", ts.dev))
	betaDev, ca, err := dialV5(t, addr, ts.dev, k("beta", ts.dev), nil)
	if err != nil {
		t.Fatalf("beta's %s with the client id acme's %s holds: %v %+v", ts.dev, ts.dev, err, ca)
	}
	if ca.Properties != nil && ca.Properties.AssignedClientID != "" {
		t.Fatalf("assigned client id %q for a client that chose one", ca.Properties.AssignedClientID)
	}
	acmeBackend := mustV5(t, addr, ts.backend, k("acme", ts.backend))
	betaBackend := mustV5(t, addr, ts.backend, k("beta", ts.backend))
	pattern := func(tenant string) string { return strings.Replace(ts.topic[tenant], "{deviceId}", "+", 1) }
	for _, c := range []struct {
		name   string
		c      *v5
		filter string
		want   byte
	}{
		{"own tenant's channel", acmeBackend, pattern("acme"), 1},
		{"own tenant's channel", betaBackend, pattern("beta"), 1},
		{"other tenant's channel", betaBackend, pattern("acme"), 0x87},
		{"other tenant's topic", betaBackend, ts.concrete("acme", ts.dev), 0x87},
		{"everything", betaBackend, "#", 0x87},
	} {
		if got := c.c.sub(t, c.filter, 1); got != c.want {
			t.Fatalf("%s: SUBSCRIBE %s: 0x%02x, want 0x%02x", c.name, c.filter, got, c.want)
		}
	}
	// Both sessions are alive after the second CONNECT: neither took the
	// other over.
	if rc := acmeDev.pub(t, ts.concrete("acme", ts.dev), `{"t":"acme"}`, nil); rc != 0 {
		t.Fatalf("acme's device publishes: 0x%02x", rc)
	}
	if rc := betaDev.pub(t, ts.concrete("beta", ts.dev), `{"t":"beta"}`, nil); rc != 0 {
		t.Fatalf("beta's device publishes: 0x%02x", rc)
	}
	// The same device id does not open the other tenant's topic.
	if rc := betaDev.pub(t, ts.concrete("acme", ts.dev), `{"t":"intruder"}`, nil); rc != 0x87 {
		t.Fatalf("beta's device on acme's topic of the same device id: 0x%02x, want 0x87", rc)
	}
	if m := acmeBackend.expectMsg(t, ts.concrete("acme", ts.dev)); string(m.Payload) != `{"t":"acme"}` {
		t.Fatalf("acme's backend got %s", m.Payload)
	}
	if m := betaBackend.expectMsg(t, ts.concrete("beta", ts.dev)); string(m.Payload) != `{"t":"beta"}` {
		t.Fatalf("beta's backend got %s", m.Payload)
	}
	acmeBackend.expectNoMsg(t, 300*time.Millisecond)
	betaBackend.expectNoMsg(t, 100*time.Millisecond)

	// Another identity's client id is refused in both tenants, even where
	// the id is free in its own tenant (beta's other vs beta's dev).
	for _, tenant := range []string{"acme", "beta"} {
		if _, ca, err := dialV5(t, addr, ts.dev, k(tenant, ts.other), nil); err == nil || ca == nil || ca.ReasonCode != 0x85 {
			t.Fatalf("%s's %s with %s's client id: %+v %v, want 0x85", tenant, ts.other, ts.dev, ca, err)
		}
	}
	// An assigned client id is the bare id, without the tenant.
	assigned, ca, err := dialV5(t, addr, "", k("beta", ts.dev), nil)
	if err != nil || ca.Properties == nil || !strings.HasPrefix(ca.Properties.AssignedClientID, ts.dev+"-") ||
		strings.Contains(ca.Properties.AssignedClientID, "/") {
		t.Fatalf("empty client id: %+v %v, want an assigned %s-<random>", ca, err, ts.dev)
	}
	_ = assigned.Disconnect(&paho.Disconnect{})

	// The same identity may take its own session over [MQTT-3.1.4-3]. The
	// embedded broker says so with DISCONNECT 0x8E; Mosquitto 2.0.11 just
	// closes the old connection, which the proxy passes on.
	acmeAgain := mustV5(t, addr, ts.dev, k("acme", ts.dev))
	select {
	case d := <-acmeDev.disc:
		if d.ReasonCode != 0x8E {
			t.Fatalf("taken-over session: DISCONNECT 0x%02x, want 0x8E", d.ReasonCode)
		}
	case <-acmeDev.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the replaced session of acme's device was not disconnected")
	}

	// Revoking beta's device ends its session only.
	now := time.Now()
	ts.swap(t, func(in *policy.Input) {
		for i := range in.Keys {
			if in.Keys[i].ID == "k-beta-"+ts.dev {
				in.Keys[i].RevokedAt = &now
			}
		}
	})
	g.Revalidate()
	select {
	case d := <-betaDev.disc:
		if d.ReasonCode != 0x87 {
			t.Fatalf("revoked: DISCONNECT 0x%02x, want 0x87", d.ReasonCode)
		}
	case <-time.After(time.Second):
		t.Fatal("beta's revoked device still connected after 1 s")
	}
	if rc := acmeAgain.pub(t, ts.concrete("acme", ts.dev), `{"t":"still"}`, nil); rc != 0 {
		t.Fatalf("acme's device after beta's revocation: 0x%02x", rc)
	}
}

func TestTenantsEmbedded(t *testing.T) {
	ts := newTenants(t)
	g, err := New(Options{Engine: ts.eng, Logger: testLogger(), TCPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	runTenants(t, ts, g, g.Addrs()["tcp"])
}

// TestTenantsProxyMosquitto: the same through a proxy to the real
// Mosquitto, where the two devices' sessions are "fleetgate-acme/<id>"
// and "fleetgate-beta/<id>".
func TestTenantsProxyMosquitto(t *testing.T) {
	requireMosquitto(t)
	ts := newTenants(t)
	g, err := New(Options{Engine: ts.eng, Logger: testLogger(), TCPAddr: "127.0.0.1:0", Upstream: "tcp://" + mosquittoAddr,
		UpstreamUsername: "fleetgate"})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	runTenants(t, ts, g, g.Addrs()["tcp"])
}

// TestTenantsProxyFleetgate: the same through a proxy to a second
// Fleetgate in embedded mode, where the sessions are "edge-acme/<id>" and
// "edge-beta/<id>" of its one identity, edge.
func TestTenantsProxyFleetgate(t *testing.T) {
	ts := newTenants(t)
	up, key := startUpstreamFleetgate(t, ts.topic["acme"], ts.topic["beta"])
	g, err := New(Options{Engine: ts.eng, Logger: testLogger(), TCPAddr: "127.0.0.1:0", Upstream: "tcp://" + up.Addrs()["tcp"],
		UpstreamUsername: "edge", UpstreamPassword: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	runTenants(t, ts, g, g.Addrs()["tcp"])
}
