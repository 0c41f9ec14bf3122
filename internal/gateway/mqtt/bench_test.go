package mqttgw

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"
)

// BenchmarkEmbeddedPublish measures QoS 0 and QoS 1 messages through the
// embedded broker with authentication, the policy (identity binding, rate
// limit, payload schema) and per-delivery authorization on: one publisher,
// one wildcard subscriber, 64 messages in flight at most (a faster
// publisher would, by design, get the subscriber disconnected as a slow
// reader). Clients and broker share the process, so msgs/s is a floor.
//
//	go test -run '^$' -bench EmbeddedPublish -benchtime 100000x ./internal/gateway/mqtt/
func BenchmarkEmbeddedPublish(b *testing.B) {
	for _, qos := range []byte{0, 1} {
		b.Run(fmt.Sprintf("qos%d", qos), func(b *testing.B) {
			f := newFixture(b, "")
			g := startGateway(b, f, nil)
			addr := g.Addrs()["tcp"]
			window := make(chan struct{}, 64)
			var got atomic.Int64
			sub := dialRaw(b, addr, 5)
			sub.connect(f.backend+"-bench", f.key[f.backend])
			sub.send(enc(b, 5, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: 1,
				Filters: packets.Subscriptions{{Filter: "fleet/+/telemetry", Qos: qos}}}))
			if pk, err := sub.next(5 * time.Second); err != nil || pk.ReasonCodes[0] != qos {
				b.Fatalf("suback %+v %v", pk, err)
			}
			_ = sub.c.SetReadDeadline(time.Time{})
			go func() { // subscriber: count and acknowledge
				for {
					pk, err := sub.r.read()
					if err != nil {
						return
					}
					if pk.FixedHeader.Type == packets.Publish {
						if qos == 1 {
							_, _ = sub.c.Write([]byte{0x40, 2, byte(pk.PacketID >> 8), byte(pk.PacketID)})
						}
						got.Add(1)
						<-window
					}
				}
			}()
			pub := dialRaw(b, addr, 5)
			pub.connect(f.dev1+"-bench", f.key[f.dev1])
			_ = pub.c.SetDeadline(time.Time{})                // the run may outlast dialRaw's deadline; stalls are caught below
			go func() { _, _ = io.Copy(io.Discard, pub.c) }() // PUBACKs
			msgs := make([][]byte, 1024)
			for i := range msgs {
				id := uint16(0)
				if qos == 1 {
					id = uint16(i + 1)
				}
				msgs[i] = enc(b, 5, publishPacket("fleet/"+f.dev1+"/telemetry", `{"temp":21.5,"id":"0123456789abcdef0123456"}`, qos, id))
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				select {
				case window <- struct{}{}:
				default:
					select { // bounded: a lost message must not hang the run
					case window <- struct{}{}:
					case <-time.After(10 * time.Second):
						b.Fatalf("stalled after %d messages, %d received", i, got.Load())
					}
				}
				if _, err := pub.c.Write(msgs[i%len(msgs)]); err != nil {
					b.Fatal(err)
				}
			}
			for deadline := time.Now().Add(30 * time.Second); got.Load() < int64(b.N); {
				if time.Now().After(deadline) {
					b.Fatalf("received %d of %d", got.Load(), b.N)
				}
				time.Sleep(time.Millisecond)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkIdleConnection measures the memory each idle, authenticated
// MQTT 5 connection costs the gateway, in embedded mode and in proxy mode
// (in front of Mosquitto, whose memory is not counted). The clients live
// in a child process (this test binary, TestHelperHoldConnections), so
// only the gateway's side is counted: Go heap and goroutine stacks in use,
// and resident memory, before and after, divided by the number of
// connections. It also reports the CONNECT rate the child achieved.
//
//	FLEETGATE_MQTT_IDLE_CONNS=15000 go test -run '^$' -bench IdleConnection -benchtime 1x ./internal/gateway/mqtt/
func BenchmarkIdleConnection(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("FLEETGATE_MQTT_IDLE_CONNS")); err == nil && v > 0 {
		n = v
	}
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
			for range b.N {
				heap, stack, rss, rate := measureIdle(b, g.Addrs()["tcp"], f.dev1, f.key[f.dev1], n)
				b.ReportMetric(heap+stack, "heap+stack-B/conn")
				b.ReportMetric(stack, "stack-B/conn")
				b.ReportMetric(rss, "rss-B/conn")
				b.ReportMetric(rate, "connects/s")
			}
		})
	}
}

// measureIdle holds n connections open from a child process and returns
// the broker's bytes per connection (heap, goroutine stacks, RSS) and the
// connect rate.
func measureIdle(tb testing.TB, addr, prefix, key string, n int) (heap, stack, rss, rate float64) {
	tb.Helper()
	before, stackBefore, rssBefore := memInUse()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldConnections$")
	cmd.Env = append(os.Environ(), "FLEETGATE_MQTT_HELPER=1", "HELPER_ADDR="+addr, "HELPER_N="+strconv.Itoa(n),
		"HELPER_PREFIX="+prefix, "HELPER_KEY="+key)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if r, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
			rate, _ = strconv.ParseFloat(r, 64)
			break
		}
	}
	if rate == 0 {
		tb.Fatal("helper did not get its connections up")
	}
	time.Sleep(time.Second) // let the connections go idle
	after, stackAfter, rssAfter := memInUse()
	if path := os.Getenv("FLEETGATE_MQTT_IDLE_HEAPPROFILE"); path != "" {
		writeHeapProfile(tb, path)
	}
	// RSS can shrink while the runtime returns freed pages: report 0 then.
	return (float64(after) - float64(before)) / float64(n), (float64(stackAfter) - float64(stackBefore)) / float64(n),
		max(float64(rssAfter)-float64(rssBefore), 0) / float64(n), rate
}

// memInUse returns the Go heap and the goroutine stacks in use after
// collections that also return free memory to the OS (the collections
// also shrink stacks less than a quarter used), and the process's resident
// set size.
func memInUse() (heap, stack, rss uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if fs := strings.Fields(string(b)); len(fs) > 1 {
			pages, _ := strconv.ParseUint(fs[1], 10, 64)
			rss = pages * uint64(os.Getpagesize())
		}
	}
	return m.HeapInuse, m.StackInuse, rss
}

// TestHelperHoldConnections is the child process of measureIdle, not a
// test: it opens HELPER_N authenticated connections, prints "ready
// <connects/s>", and holds them until its stdin closes.
func TestHelperHoldConnections(t *testing.T) {
	if os.Getenv("FLEETGATE_MQTT_HELPER") != "1" {
		t.Skip("child process of BenchmarkIdleConnection")
	}
	n, _ := strconv.Atoi(os.Getenv("HELPER_N"))
	addr, prefix, key := os.Getenv("HELPER_ADDR"), os.Getenv("HELPER_PREFIX"), os.Getenv("HELPER_KEY")
	conns := make([]net.Conn, 0, n)
	start := time.Now()
	buf := make([]byte, 64)
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(connectBytes(5, fmt.Sprintf("%s-%d", prefix, i), key, func(pk *packets.Packet) { pk.Connect.Keepalive = 600 })); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if m, err := c.Read(buf); err != nil || m < 4 || buf[0] != 0x20 || buf[3] != 0 {
			t.Fatalf("connection %d: CONNACK %x %v", i, buf[:m], err)
		}
		_ = c.SetDeadline(time.Time{})
		conns = append(conns, c)
	}
	fmt.Printf("ready %.0f\n", float64(n)/time.Since(start).Seconds())
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		_ = c.Close()
	}
}

// writeHeapProfile writes the live heap to path while the idle
// connections are held, so `go tool pprof -sample_index=inuse_space`
// shows what each one keeps (run with -memprofilerate 1 for every
// allocation, not a sample).
func writeHeapProfile(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		tb.Fatal(err)
	}
}
