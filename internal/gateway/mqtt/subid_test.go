package mqttgw

import (
	"context"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// TestSubscriptionIdentifiers covers the forked broker's subscriber
// lookup (internal/third_party/mochi, gatherSubscriptions), which skips
// the identifier map for a client's first matching subscription when it
// has no identifier: deliveries must still carry exactly the identifiers
// of the matching subscriptions [MQTT-3.3.4-3], one delivery per client
// when several of its filters match [MQTT-3.3.4-2].
func TestSubscriptionIdentifiers(t *testing.T) {
	f := newFixture(t, "")
	g := startGateway(t, f, nil)
	addr := g.Addrs()["tcp"]
	tele := "fleet/" + f.dev1 + "/telemetry"
	type filter struct {
		topic string
		id    int // 0: none
	}
	tests := []struct {
		name    string
		filters []filter
		want    int // identifier in the delivery, 0 for none
	}{
		{"no identifier", []filter{{"fleet/+/telemetry", 0}}, 0},
		{"one identifier", []filter{{"fleet/+/telemetry", 7}}, 7},
		{"two filters, the second with an identifier", []filter{{"fleet/+/telemetry", 0}, {tele, 9}}, 9},
		{"two filters, the first with an identifier", []filter{{"fleet/+/telemetry", 11}, {tele, 0}}, 11},
	}
	pub := mustV5(t, addr, f.dev1+"-pub", f.key[f.dev1])
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustV5(t, addr, f.backend+"-sid"+string(rune('a'+i)), f.key[f.backend])
			for _, fl := range tc.filters {
				s := &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: fl.topic, QoS: 1}}}
				if fl.id > 0 {
					s.Properties = &paho.SubscribeProperties{SubscriptionIdentifier: &fl.id}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				sa, err := c.Subscribe(ctx, s)
				cancel()
				if sa == nil || sa.Reasons[0] != 1 {
					t.Fatalf("subscribe %s: %+v %v", fl.topic, sa, err)
				}
			}
			if code := pub.pub(t, tele, `{"temp":1}`, nil); code != 0 {
				t.Fatalf("PUBACK %#x", code)
			}
			m := c.expectMsg(t, tele)
			got := 0
			if m.Properties != nil && m.Properties.SubscriptionIdentifier != nil {
				got = *m.Properties.SubscriptionIdentifier
			}
			if got != tc.want {
				t.Fatalf("subscription identifier %d, want %d", got, tc.want)
			}
			c.expectNoMsg(t, 200*time.Millisecond) // one delivery per client
		})
	}
}
