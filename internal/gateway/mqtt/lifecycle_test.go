package mqttgw

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/fleetgate/fleetgate/internal/identity/credential"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
	"github.com/fleetgate/fleetgate/internal/telemetry"
)

// TestClientIDOwnedByAnotherIdentity: "dev1-b" is a valid id for both
// "dev1" (prefix rule) and an application named "dev1-b"; whichever holds
// it first keeps it, in both modes.
func TestClientIDOwnedByAnotherIdentity(t *testing.T) {
	run := func(t *testing.T, f *fixture, addr string) {
		other := f.dev1 + "-b"
		secret, _, hash := credential.NewAPIKey()
		f.swap(t, func(in *policy.Input) {
			in.Apps = append(in.Apps, model.Application{ID: "app-b", TenantID: "acme", Name: other})
			in.Keys = append(in.Keys, model.APIKey{ID: "key-b", TenantID: "acme", AppID: "app-b", Hash: hash[:]})
		})
		holder := mustV5(t, addr, other, f.key[f.dev1]) // dev1, under the prefix rule
		if _, ca, err := dialV5(t, addr, other, secret, nil); err == nil || ca.ReasonCode != 0x85 {
			t.Fatalf("second identity on a held id: %+v %v, want 0x85", ca, err)
		}
		again := mustV5(t, addr, other, f.key[f.dev1]) // the same identity may take its session over
		select {
		case d := <-holder.disc:
			if d.ReasonCode != 0x8E {
				t.Fatalf("taken-over session got reason %#x, want 0x8E", d.ReasonCode)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("taken-over session not disconnected")
		}
		_ = again.Disconnect(&paho.Disconnect{})
	}
	t.Run("embedded", func(t *testing.T) {
		f := newFixture(t, "")
		run(t, f, startGateway(t, f, nil).Addrs()["tcp"])
	})
	t.Run("proxy", func(t *testing.T) {
		f, g, _ := startProxyToFleetgate(t, nil)
		run(t, f, g.Addrs()["tcp"])
	})
}

// TestClose: Close ends authenticated sessions and connections that never
// sent CONNECT, promptly, in both modes.
func TestClose(t *testing.T) {
	for _, mode := range []string{"embedded", "proxy"} {
		t.Run(mode, func(t *testing.T) {
			var f *fixture
			var g *Gateway
			if mode == "embedded" {
				f = newFixture(t, "")
				g = startGateway(t, f, nil)
			} else {
				f, g, _ = startProxyToFleetgate(t, nil)
			}
			addr := g.Addrs()["tcp"]
			c := mustV5(t, addr, f.dev1, f.key[f.dev1])
			silent := dialRaw(t, addr, 5)
			time.Sleep(50 * time.Millisecond) // let the server accept it
			start := time.Now()
			if err := g.Close(); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("Close took %v", d)
			}
			if _, closed := silent.closed(2 * time.Second); !closed {
				t.Fatal("connection without CONNECT still open after Close")
			}
			select {
			case <-c.Done():
			case <-time.After(2 * time.Second):
				t.Fatal("session still open after Close")
			}
			if err := g.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
}

// TestMetrics: decisions reach the data-plane metrics, labelled by route
// and MQTT reason code, never by topic.
func TestMetrics(t *testing.T) {
	m := telemetry.NewMetrics()
	f := newFixture(t, "")
	g := startGateway(t, f, func(o *Options) { o.Metrics = m.NewDataPlane() })
	c := mustV5(t, g.Addrs()["tcp"], f.dev1, f.key[f.dev1])
	c.pub(t, "fleet/"+f.dev1+"/telemetry", `{"temp":1}`, nil)
	c.pub(t, "fleet/"+f.dev2+"/telemetry", `{"temp":1}`, nil)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`fleetgate_requests_total{api="fleet",operation="pubTelemetry",protocol="mqtt",status="0",version="v1"} 1`,
		`fleetgate_requests_total{api="fleet",operation="pubTelemetry",protocol="mqtt",status="135",version="v1"} 1`,
		`fleetgate_denials_total{protocol="mqtt",reason="identity-binding"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, f.dev2) {
		t.Error("a topic leaked into metric labels")
	}
}
