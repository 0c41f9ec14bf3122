// SPDX-License-Identifier: MIT

package mqtt

import (
	"testing"

	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"
)

// TestSubscribersPooled checks that a released subscriber set comes back
// empty: the next publish, on another topic, sees its own subscribers and
// none of the previous one's, also after a set too large to be kept.
func TestSubscribersPooled(t *testing.T) {
	x := NewTopicsIndex()
	x.Subscribe("backend", packets.Subscription{Filter: "fleet/+/telemetry"})
	x.Subscribe("dev-1", packets.Subscription{Filter: "fleet/dev-1/commands"})
	for i := range keepSubscriptions + 1 {
		x.Subscribe(string(rune('a'+i%26))+string(rune('A'+i/26)), packets.Subscription{Filter: "wide/#"})
	}
	tests := []struct {
		topic string
		want  []string
	}{
		{"fleet/dev-1/telemetry", []string{"backend"}},
		{"fleet/dev-1/commands", []string{"dev-1"}},
		{"nobody/listens", nil},
		{"fleet/dev-2/telemetry", []string{"backend"}},
	}
	for round := range 3 {
		for _, tc := range tests {
			s := x.Subscribers(tc.topic)
			if len(s.Subscriptions) != len(tc.want) {
				t.Fatalf("round %d, %s: %d subscribers, want %v", round, tc.topic, len(s.Subscriptions), tc.want)
			}
			for _, id := range tc.want {
				if _, ok := s.Subscriptions[id]; !ok {
					t.Fatalf("round %d, %s: %s missing", round, tc.topic, id)
				}
			}
			s.Release()
		}
		wide := x.Subscribers("wide/x")
		if len(wide.Subscriptions) != keepSubscriptions+1 {
			t.Fatalf("wide: %d subscribers", len(wide.Subscriptions))
		}
		wide.Release()
		if wide.Subscriptions != nil {
			t.Fatal("a set larger than keepSubscriptions was kept")
		}
	}
}
