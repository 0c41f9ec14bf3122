package mqttgw

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"
)

// TestConcurrentQoS1Order runs publishers that pipeline QoS 1 messages in
// bursts against subscribers that acknowledge each delivery, through the
// embedded broker, all at once: what the outbound queue (deliveries
// encoded by the publishing goroutine, written in batches) and the held
// acknowledgements do under concurrency. Every publisher gets every
// PUBACK, and every subscriber gets every message exactly once and in each
// publisher's order [MQTT-4.6.0-6].
func TestConcurrentQoS1Order(t *testing.T) {
	const (
		pubs  = 6
		subs  = 2
		msgs  = 400
		burst = 16
	)
	f := newFixture(t, "")
	g := startGateway(t, f, nil)
	addr := g.Addrs()["tcp"]
	topic := "fleet/" + f.dev1 + "/telemetry"
	deadline := time.Now().Add(30 * time.Second)

	type seen struct {
		next [pubs]int // the sequence number expected next from each publisher
		err  error
	}
	results := make([]seen, subs)
	var wg sync.WaitGroup
	for i := range subs {
		c := dialRaw(t, addr, 4)
		c.connect(fmt.Sprintf("%s-order-sub%d", f.backend, i), f.key[f.backend])
		c.send(enc(t, 4, subscribePacket(1, "fleet/+/telemetry")))
		if pk, err := c.next(5 * time.Second); err != nil || pk.FixedHeader.Type != packets.Suback || pk.ReasonCodes[0] != 1 {
			t.Fatalf("suback: %+v %v", pk, err)
		}
		wg.Add(1)
		go func(r *seen) {
			defer wg.Done()
			_ = c.c.SetDeadline(deadline)
			for got := 0; got < pubs*msgs; got++ {
				pk, err := c.r.read()
				if err != nil {
					r.err = fmt.Errorf("after %d deliveries: %w", got, err)
					return
				}
				if pk.FixedHeader.Type != packets.Publish || pk.FixedHeader.Qos != 1 {
					r.err = fmt.Errorf("delivery %d: type %d QoS %d", got, pk.FixedHeader.Type, pk.FixedHeader.Qos)
					return
				}
				if _, err := c.c.Write([]byte{0x40, 2, byte(pk.PacketID >> 8), byte(pk.PacketID)}); err != nil {
					r.err = err
					return
				}
				p, n, ok := parseSeq(string(pk.Payload))
				if !ok || p >= pubs || n != r.next[p] {
					r.err = fmt.Errorf("delivery %d: payload %s, want message %d of publisher %d", got, pk.Payload, r.next[min(p, pubs-1)], p)
					return
				}
				r.next[p]++
			}
		}(&results[i])
	}

	pubErrs := make([]error, pubs)
	for p := range pubs {
		c := dialRaw(t, addr, 4)
		c.connect(fmt.Sprintf("%s-order-pub%d", f.dev1, p), f.key[f.dev1])
		_ = c.c.SetDeadline(deadline)
		wg.Add(2)
		go func() { // PUBACKs, in order
			defer wg.Done()
			for i := range msgs {
				pk, err := c.r.read()
				if err == nil && (pk.FixedHeader.Type != packets.Puback || pk.PacketID != uint16(i+1) || pk.ReasonCode != 0) {
					err = fmt.Errorf("type %d id %d code %#x", pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode)
				}
				if err != nil {
					pubErrs[p] = errors.Join(pubErrs[p], fmt.Errorf("publisher %d, PUBACK %d: %w", p, i+1, err))
					return
				}
			}
		}()
		var bursts [][]byte // encoded here: t must not fail from another goroutine
		for start := 0; start < msgs; start += burst {
			var b []byte
			for i := start; i < min(start+burst, msgs); i++ {
				b = append(b, enc(t, 4, publishPacket(topic, fmt.Sprintf(`{"temp":1,"seq":"%d-%d"}`, p, i), 1, uint16(i+1)))...)
			}
			bursts = append(bursts, b)
		}
		go func() { // bursts of pipelined publishes, one write each
			defer wg.Done()
			for _, b := range bursts {
				if _, err := c.c.Write(b); err != nil {
					var ne net.Error
					if !errors.As(err, &ne) || !ne.Timeout() {
						pubErrs[p] = errors.Join(pubErrs[p], fmt.Errorf("publisher %d: %w", p, err))
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range pubErrs {
		if err != nil {
			t.Error(err)
		}
	}
	for i, r := range results {
		if r.err != nil {
			t.Errorf("subscriber %d: %v", i, r.err)
		}
	}
}

// parseSeq reads the publisher and message numbers of a payload written
// by TestConcurrentQoS1Order.
func parseSeq(payload string) (pub, n int, ok bool) {
	_, rest, found := strings.Cut(payload, `"seq":"`)
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(strings.TrimSuffix(rest, `"}`), "-")
	if !found {
		return 0, 0, false
	}
	p, err1 := strconv.Atoi(a)
	m, err2 := strconv.Atoi(b)
	return p, m, err1 == nil && err2 == nil && p >= 0
}
