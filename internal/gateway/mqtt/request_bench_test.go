package mqttgw

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// BenchmarkCommand compares, in one run, a command the device only
// receives (Publish, QoS 1, until the device has it) with one it answers
// (Request: QoS 1 command with Response Topic and Correlation Data, the
// device's QoS 1 reply decided by the engine, matched by correlation), in
// each mode. The ratio request/publish is the cost of waiting for the
// reply; proxy-mode requests include their own upstream session.
// Through Mosquitto, requests cost ~40 ms unless mosquitto.conf has
// set_tcp_nodelay true: Mosquitto's Nagle meets our delayed ACK on the
// short request session (docs/benchmarks.md).
//
//	go test -run '^$' -bench Command -benchtime 2000x ./internal/gateway/mqtt/
func BenchmarkCommand(b *testing.B) {
	for _, mode := range []string{"embedded", "proxy-mosquitto"} {
		b.Run(mode, func(b *testing.B) {
			var f *fixture
			var g *Gateway
			if mode == "embedded" {
				f = newFixture(b, "")
				g = startGateway(b, f, nil)
			} else {
				f, g = startProxyToMosquitto(b)
			}
			withReplies(b, f)
			got := make(chan *paho.Publish, 1)
			dev := mustV5(b, g.Addrs()["tcp"], f.dev1, f.key[f.dev1])
			cmd, reply := "fleet/"+f.dev1+"/commands", "fleet/"+f.dev1+"/replies"
			dev.sub(b, cmd, 1)
			var answer atomic.Bool
			go func() { // the device: answers commands that ask for it
				for m := range dev.msgs {
					if answer.Load() && m.Properties != nil && m.Properties.ResponseTopic != "" {
						go func() {
							ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
							defer cancel()
							_, _ = dev.Publish(ctx, &paho.Publish{Topic: reply, QoS: 1, Payload: []byte("ok"),
								Properties: &paho.PublishProperties{CorrelationData: m.Properties.CorrelationData}})
						}()
						continue
					}
					got <- m
				}
			}()
			ctx := context.Background()
			b.Run("publish", func(b *testing.B) {
				answer.Store(false)
				for range b.N {
					if err := g.Publish(ctx, cmd, []byte(`{"cmd":"ping"}`), 1, false); err != nil {
						b.Fatal(err)
					}
					select {
					case <-got:
					case <-time.After(5 * time.Second):
						b.Fatal("command lost")
					}
				}
			})
			b.Run("request", func(b *testing.B) {
				answer.Store(true)
				for range b.N {
					rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					r, err := g.Request(rctx, cmd, []byte(`{"cmd":"ping"}`), 1, reply)
					cancel()
					if err != nil || string(r.Payload) != "ok" {
						b.Fatalf("%+v %v", r, err)
					}
				}
			})
		})
	}
}
