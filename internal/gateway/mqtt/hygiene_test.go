package mqttgw

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"
)

// setup is a gateway under test and its fixture.
type setup struct {
	name string
	f    *fixture
	g    *Gateway
}

// modes starts the embedded broker and a proxy in front of a second
// Fleetgate: protocol hygiene must hold in both.
func modes(t *testing.T) []setup {
	f := newFixture(t, "")
	g := startGateway(t, f, nil)
	pf, pg, _ := startProxyToFleetgate(t, nil)
	return []setup{{"embedded", f, g}, {"proxy", pf, pg}}
}

// expectClosed fails unless the server closes the connection within 3 s;
// it returns the packets sent before closing.
func expectClosed(t *testing.T, r *raw) []packets.Packet {
	t.Helper()
	got, closed := r.closed(3 * time.Second)
	if !closed {
		t.Fatalf("connection still open; received %d packets", len(got))
	}
	return got
}

// expectDisconnect checks an MQTT 5 DISCONNECT with a reason >= 0x80 (a
// refusal the client can read), then the close.
func expectDisconnect(t *testing.T, r *raw, want byte) {
	t.Helper()
	got := expectClosed(t, r)
	if len(got) == 0 || got[len(got)-1].FixedHeader.Type != packets.Disconnect {
		t.Fatalf("no DISCONNECT before close: %+v", got)
	}
	if c := got[len(got)-1].ReasonCode; c != want {
		t.Fatalf("DISCONNECT reason %#x, want %#x", c, want)
	}
}

// TestProtocolHygiene sends malformed and hostile packets over raw TCP.
func TestProtocolHygiene(t *testing.T) {
	for _, m := range modes(t) {
		t.Run(m.name, func(t *testing.T) {
			addr, f := m.g.Addrs()["tcp"], m.f
			conn := func(t *testing.T, v byte) *raw {
				r := dialRaw(t, addr, v)
				r.connect(f.dev1+"-raw", f.key[f.dev1])
				return r
			}
			t.Run("publish before connect", func(t *testing.T) {
				r := dialRaw(t, addr, 5)
				r.send(enc(t, 5, publishPacket("fleet/"+f.dev1+"/telemetry", `{"temp":1}`, 0, 0)))
				if got := expectClosed(t, r); len(got) != 0 {
					t.Fatalf("answered %+v; [MQTT-3.1.0-1] wants a close", got)
				}
			})
			t.Run("second connect v5", func(t *testing.T) {
				r := conn(t, 5)
				r.send(connectBytes(5, f.dev1+"-raw", f.key[f.dev1], nil))
				expectDisconnect(t, r, 0x82)
			})
			t.Run("second connect v3", func(t *testing.T) {
				r := conn(t, 4)
				r.send(connectBytes(4, f.dev1+"-raw", f.key[f.dev1], nil))
				expectClosed(t, r)
			})
			t.Run("invalid will qos v5", func(t *testing.T) {
				r := dialRaw(t, addr, 5)
				r.send(connectBytes(5, f.dev1, f.key[f.dev1], func(pk *packets.Packet) {
					pk.Connect.WillFlag, pk.Connect.WillQos = true, 3
					pk.Connect.WillTopic, pk.Connect.WillPayload = "fleet/"+f.dev1+"/telemetry", []byte("{}")
				}))
				got := expectClosed(t, r)
				if len(got) != 1 || got[0].FixedHeader.Type != packets.Connack || got[0].ReasonCode < 0x80 {
					t.Fatalf("got %+v, want a refusing CONNACK", got)
				}
			})
			t.Run("invalid will qos v3", func(t *testing.T) {
				r := dialRaw(t, addr, 4)
				r.send(connectBytes(4, f.dev1, f.key[f.dev1], func(pk *packets.Packet) {
					pk.Connect.WillFlag, pk.Connect.WillQos = true, 3
					pk.Connect.WillTopic, pk.Connect.WillPayload = "fleet/"+f.dev1+"/telemetry", []byte("{}")
				}))
				if got := expectClosed(t, r); len(got) != 0 {
					t.Fatalf("got %+v; [MQTT-3.1.4-1] wants a close without CONNACK", got)
				}
			})
			t.Run("zero-length topic v5", func(t *testing.T) {
				r := conn(t, 5)
				r.send([]byte{0x30, 4, 0, 0, 0, 'x'}) // topic "", no alias (Mosquitto CVE-2021-34432)
				expectDisconnect(t, r, 0x82)
			})
			t.Run("zero-length topic v3", func(t *testing.T) {
				r := conn(t, 4)
				r.send([]byte{0x30, 3, 0, 0, 'x'})
				expectClosed(t, r)
			})
			t.Run("wildcard in publish topic", func(t *testing.T) {
				r := conn(t, 5)
				r.send(enc(t, 5, publishPacket("fleet/+/telemetry", `{"temp":1}`, 1, 7)))
				expectDisconnect(t, r, 0x82) // [MQTT-3.3.2-2]
			})
			t.Run("topic alias not offered", func(t *testing.T) {
				r := conn(t, 5)
				pk := publishPacket("fleet/"+f.dev1+"/telemetry", `{"temp":1}`, 0, 0)
				pk.Properties.TopicAlias, pk.Properties.TopicAliasFlag = 1, true
				r.send(enc(t, 5, pk))
				expectDisconnect(t, r, 0x94) // [MQTT-3.2.2-17]
			})
			t.Run("maximal remaining length before connect", func(t *testing.T) {
				r := dialRaw(t, addr, 5)
				r.send([]byte{0x10, 0xFF, 0xFF, 0xFF, 0x7F})
				expectClosed(t, r)
			})
			t.Run("maximal remaining length after connect", func(t *testing.T) {
				r := conn(t, 5)
				r.send([]byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0, 1, 'a'})
				expectClosed(t, r) // never allocates 256 MiB
			})
			t.Run("five-byte remaining length", func(t *testing.T) {
				r := conn(t, 4)
				r.send([]byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01})
				expectClosed(t, r)
			})
			t.Run("packet type 0", func(t *testing.T) {
				r := conn(t, 4)
				r.send([]byte{0x00, 0x00})
				expectClosed(t, r)
			})
			t.Run("packet larger than the limit", func(t *testing.T) {
				r := conn(t, 5)
				big := `{"temp":1,"pad":"` + strings.Repeat("a", DefaultMaxPacketSize) + `"}`
				go func() { _, _ = r.c.Write(enc(t, 5, publishPacket("fleet/"+f.dev1+"/telemetry", big, 0, 0))) }()
				expectClosed(t, r)
			})
			t.Run("subscribe that crashes mochi's decoder", func(t *testing.T) {
				r := conn(t, 5)
				// v5 SUBSCRIBE, id 1, no properties, filter "a" and no
				// options byte: mochi v2.7.9 indexes past the end.
				r.send([]byte{0x82, 6, 0, 1, 0, 0, 1, 'a'})
				expectClosed(t, r)
				conn(t, 5) // still serving
			})
			t.Run("ten thousand subscriptions", func(t *testing.T) { tenThousandSubs(t, addr, f) })
			t.Run("slow reader", func(t *testing.T) { slowReader(t, addr, f) })
		})
	}
}

// tenThousandSubs subscribes 10,000 filters in 100 packets: the first
// maxSubscriptions are granted, the rest refused with 0x97 (MQTT 5) or
// 0x80 (3.1.1).
func tenThousandSubs(t *testing.T, addr string, f *fixture) {
	for _, v := range []byte{5, 4} {
		r := dialRaw(t, addr, v)
		r.connect(fmt.Sprintf("%s-subs%d", f.backend, v), f.key[f.backend])
		granted, refused := 0, 0
		for p := range 100 {
			filters := make([]string, 100)
			for i := range filters {
				filters[i] = fmt.Sprintf("fleet/d%05d/telemetry", p*100+i)
			}
			r.send(enc(t, v, subscribePacket(uint16(p+1), filters...)))
			pk, err := r.next(5 * time.Second)
			if err != nil || pk.FixedHeader.Type != packets.Suback || len(pk.ReasonCodes) != 100 {
				t.Fatalf("v%d packet %d: %+v %v", v, p, pk, err)
			}
			for _, c := range pk.ReasonCodes {
				switch {
				case c == 1:
					granted++
				case v == 5 && c == 0x97, v == 4 && c == 0x80:
					refused++
				default:
					t.Fatalf("v%d: reason %#x", v, c)
				}
			}
		}
		if granted != maxSubscriptions || refused != 10000-maxSubscriptions {
			t.Fatalf("v%d: %d granted, %d refused; want %d granted", v, granted, refused, maxSubscriptions)
		}
	}
}

// slowReader: a subscriber that never reads is disconnected once its
// outbound queue is full; the publisher keeps going.
func slowReader(t *testing.T, addr string, f *fixture) {
	slow := dialRaw(t, addr, 5)
	slow.connect(f.backend+"-slow", f.key[f.backend])
	slow.send(enc(t, 5, subscribePacket(1, "fleet/+/telemetry")))
	if pk, err := slow.next(5 * time.Second); err != nil || pk.FixedHeader.Type != packets.Suback {
		t.Fatalf("suback: %+v %v", pk, err)
	}
	pub := dialRaw(t, addr, 5)
	pub.connect(f.dev1+"-pub", f.key[f.dev1])
	msg := enc(t, 5, publishPacket("fleet/"+f.dev1+"/telemetry", `{"temp":1,"pad":"`+strings.Repeat("p", 8<<10)+`"}`, 0, 0))
	deadline := time.Now().Add(20 * time.Second)
	for i := range 2000 { // 16 MiB: far more than the queue and socket buffers
		_ = pub.c.SetWriteDeadline(deadline)
		if _, err := pub.c.Write(msg); err != nil {
			t.Fatalf("publisher blocked or cut off after %d messages: %v", i, err)
		}
	}
	// Now read: a closed connection drains to EOF (or a reset); an open
	// one would keep us reading until the deadline.
	time.Sleep(500 * time.Millisecond)
	_ = slow.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, slow.c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("slow subscriber still connected")
	}
}
