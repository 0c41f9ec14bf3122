package mqttgw

import (
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"
)

// TestPipelinedAcks checks the acknowledgements the broker holds back
// while it handles packets that arrived together (mochi's deferAcks): they
// all come, in order, interleaved correctly with other answers, and one
// that answers the last packet of a burst, or a lone packet, is not left
// waiting for more input.
func TestPipelinedAcks(t *testing.T) {
	f := newFixture(t, "")
	g := startGateway(t, f, nil)
	c := dialRaw(t, g.Addrs()["tcp"], 4)
	c.connect(f.dev1+"-acks", f.key[f.dev1])
	topic := "fleet/" + f.dev1 + "/telemetry"
	pub := func(id uint16) []byte { return enc(t, 4, publishPacket(topic, `{"temp":1}`, 1, id)) }
	pingreq := []byte{0xC0, 0x00}

	type want struct {
		typ byte
		id  uint16
	}
	tests := []struct {
		name string
		send []byte
		want []want
	}{
		{"lone publish", pub(100), []want{{packets.Puback, 100}}},
		{"burst ending in a publish", append(append(pub(1), pub(2)...), pub(3)...),
			[]want{{packets.Puback, 1}, {packets.Puback, 2}, {packets.Puback, 3}}},
		{"burst ending in a ping", append(append(pub(4), pub(5)...), pingreq...),
			[]want{{packets.Puback, 4}, {packets.Puback, 5}, {packets.Pingresp, 0}}},
		{"subscribe inside a burst", append(append(pub(6), enc(t, 4, subscribePacket(7, "fleet/"+f.dev1+"/commands"))...), pub(8)...),
			[]want{{packets.Puback, 6}, {packets.Suback, 7}, {packets.Puback, 8}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.send(tc.send) // one write: the broker reads the burst at once
			for i, w := range tc.want {
				pk, err := c.next(2 * time.Second)
				if err != nil {
					t.Fatalf("answer %d: %v (want type %d id %d)", i, err, w.typ, w.id)
				}
				if pk.FixedHeader.Type != w.typ || pk.PacketID != w.id {
					t.Fatalf("answer %d: type %d id %d, want type %d id %d", i, pk.FixedHeader.Type, pk.PacketID, w.typ, w.id)
				}
			}
		})
	}

	// Many at once: 200 publishes in one write, 200 PUBACKs in order.
	var burst []byte
	for id := uint16(1000); id < 1200; id++ {
		burst = append(burst, pub(id)...)
	}
	c.t = t
	c.send(burst)
	for id := uint16(1000); id < 1200; id++ {
		pk, err := c.next(5 * time.Second)
		if err != nil || pk.FixedHeader.Type != packets.Puback || pk.PacketID != id {
			t.Fatalf("PUBACK %d: %+v %v", id, pk.FixedHeader, err)
		}
	}
}
