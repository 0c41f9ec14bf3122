package mqttgw

import (
	"testing"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/policy"
)

// TestPublishRouteCache: the per-session route cache (publishScratch.route)
// never changes an answer. A session publishing on one topic, then on
// others, then on the first again, across snapshot swaps that tighten the
// policy, gets the same reason code as a fresh decision would give.
func TestPublishRouteCache(t *testing.T) {
	f := newFixture(t, "")
	g := startGateway(t, f, nil)
	dev1 := mustV5(t, g.Addrs()["tcp"], f.dev1, f.key[f.dev1])
	own, foreign := "fleet/"+f.dev1+"/telemetry", "fleet/"+f.dev2+"/telemetry"
	steps := []struct {
		name  string
		swap  func(*policy.Input)
		topic string
		body  string
		want  byte
	}{
		{name: "own topic", topic: own, body: `{"temp":1}`, want: 0},
		{name: "own topic again (cached)", topic: own, body: `{"temp":2}`, want: 0},
		{name: "cached route still validates the payload", topic: own, body: `{"temp":900}`, want: 0x99},
		{name: "another device's topic", topic: foreign, body: `{"temp":3}`, want: 0x87},
		{name: "undeclared topic", topic: "fleet/" + f.dev1 + "/nothing", body: `{}`, want: 0x87},
		{name: "own topic after misses", topic: own, body: `{"temp":4}`, want: 0},
		{name: "binding tightened by a new snapshot", topic: own, body: `{"temp":5}`, want: 0x87,
			swap: func(in *policy.Input) {
				op := in.Versions[0].Policy.Operations["pubTelemetry"]
				op.Bindings = []model.IdentityBinding{{Param: "deviceId", Equals: "principal.attributes.role"}}
				in.Versions[0].Policy.Operations["pubTelemetry"] = op
			}},
		{name: "channel retired by a new snapshot", topic: own, body: `{"temp":6}`, want: 0x87,
			swap: func(in *policy.Input) { in.Versions[0].State = model.StateRetired }},
		{name: "channel published again", topic: own, body: `{"temp":7}`, want: 0,
			swap: func(in *policy.Input) {
				in.Versions[0].State = model.StatePublished
				op := in.Versions[0].Policy.Operations["pubTelemetry"]
				op.Bindings = []model.IdentityBinding{{Param: "deviceId", Equals: "principal.id"}}
				in.Versions[0].Policy.Operations["pubTelemetry"] = op
			}},
	}
	for _, st := range steps {
		if st.swap != nil {
			f.swap(t, st.swap)
		}
		if got := dev1.pub(t, st.topic, st.body, nil); got != st.want {
			t.Fatalf("%s: PUBACK 0x%02x, want 0x%02x", st.name, got, st.want)
		}
	}
}
