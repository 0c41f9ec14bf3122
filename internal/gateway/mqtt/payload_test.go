package mqttgw

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// TestDeliveriesSharePayload covers the forked broker's shared payloads
// (internal/third_party/mochi, publishToClient): every subscriber's copy
// of a message points at one payload, so it must be one nobody writes
// into. A device's PUBLISH owns its decoded bytes; Gateway.Publish and
// Gateway.Request take the caller's slice, which the broker must copy
// once, since the caller may reuse it as soon as the call returns (under
// -race, sharing it would also be reported as a data race).
func TestDeliveriesSharePayload(t *testing.T) {
	f := newFixture(t, "")
	g := startGateway(t, f, nil)
	addr := g.Addrs()["tcp"]
	cmds := "fleet/" + f.dev1 + "/commands"
	tele := "fleet/" + f.dev1 + "/telemetry"
	a := mustV5(t, addr, f.dev1+"-a", f.key[f.dev1])
	b := mustV5(t, addr, f.dev1+"-b", f.key[f.dev1])
	back1 := mustV5(t, addr, f.backend+"-1", f.key[f.backend])
	back2 := mustV5(t, addr, f.backend+"-2", f.key[f.backend])
	for i, c := range []*v5{a, b} {
		if code := c.sub(t, cmds, byte(i)); code != byte(i) {
			t.Fatalf("SUBACK %#x", code)
		}
	}
	for i, c := range []*v5{back1, back2} {
		if code := c.sub(t, "fleet/+/telemetry", byte(i)); code != byte(i) {
			t.Fatalf("SUBACK %#x", code)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	tests := []struct {
		name    string
		topic   string
		subs    []*v5
		payload string
		send    func(payload string)
	}{
		{"gateway publish, caller reuses its buffer", cmds, []*v5{a, b}, `{"cmd":"honk"}`, func(p string) {
			buf := []byte(p)
			if err := g.Publish(ctx, cmds, buf, 1, false); err != nil {
				t.Fatal(err)
			}
			copy(buf, bytes.Repeat([]byte("X"), len(buf)))
		}},
		{"device publish to two subscribers", tele, []*v5{back1, back2}, `{"temp":21.5}`, func(p string) {
			if code := a.pub(t, tele, p, nil); code != 0 {
				t.Fatalf("PUBACK %#x", code)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 20 {
				tc.send(tc.payload)
				for _, c := range tc.subs {
					if m := c.expectMsg(t, tc.topic); string(m.Payload) != tc.payload {
						t.Fatalf("message %d: payload %q, want %q", i, m.Payload, tc.payload)
					}
				}
			}
		})
	}
}
