package mqttgw

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// TestIdleConnectionStack guards the forked broker's idle footprint: an
// authenticated connection that does nothing must not keep the stacks
// CONNECT needed (before the fork's change: 16 KB reader + 4 KB writer).
// The bar, 10 KB, is generous (measured 6.2 KB for a reader and a writer,
// 4 KB since the writer runs only while packets are queued; the race
// detector's instrumentation makes frames bigger) but fails if CONNECT
// runs on the reader again.
func TestIdleConnectionStack(t *testing.T) {
	f := newFixture(t, "")
	g := startGateway(t, f, nil)
	addr := g.Addrs()["tcp"]
	// A few publishes first, so the policy engine's deep paths have run
	// in this process and the adaptive starting stack size reflects them.
	warm := dialRaw(t, addr, 5)
	warm.connect(f.dev1+"-warm", f.key[f.dev1])
	warm.send(enc(t, 5, publishPacket("fleet/"+f.dev1+"/telemetry", `{"temp":20}`, 1, 1)))
	if pk, err := warm.next(5 * time.Second); err != nil || pk.ReasonCode != 0 {
		t.Fatalf("puback %+v %v", pk, err)
	}
	stack0, g0 := idleStacks()
	const n = 200
	for i := range n {
		r := dialRaw(t, addr, 5)
		r.connect(fmt.Sprintf("%s-idle%d", f.dev1, i), f.key[f.dev1])
	}
	stack1, g1 := idleStacks()
	perConn := (float64(stack1) - float64(stack0)) / n
	t.Logf("%.0f B of goroutine stack and %.2f goroutines per idle connection", perConn, float64(g1-g0)/n)
	if perConn > 10<<10 {
		t.Fatalf("idle connection holds %.0f B of goroutine stacks, want <= 10 KB", perConn)
	}
	// The writer goroutine runs only while packets are queued (the fork's
	// outQueue): an idle connection has its reader alone.
	if gs := float64(g1-g0) / n; gs > 1.1 {
		t.Fatalf("%.2f goroutines per idle connection, want 1", gs)
	}
}

// idleStacks returns the goroutine stack bytes in use and the number of
// goroutines after enough collections for stacks to shrink (one halving
// per collection, from at most 16 KB).
func idleStacks() (uint64, int) {
	time.Sleep(100 * time.Millisecond) // let connection goroutines park
	for range 4 {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.StackInuse, runtime.NumGoroutine()
}

// TestIdleConnectionHeap guards the heap an idle, authenticated connection
// keeps, with the connections held by a child process so that only the
// broker's side is counted. Before the fork's lazy outbound queue and
// pooled read buffer it was 7.1 KB (a 2 KB read buffer, a 1.2 KB outbound
// channel, the writer goroutine's g); measured 2.5 KB after. The bar,
// 3.5 KB, leaves room for noise but fails if either buffer is held per
// idle client again.
func TestIdleConnectionHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process holding connections")
	}
	f := newFixture(t, "")
	g := startGateway(t, f, nil)
	const n = 1000
	heap, stack, _, _ := measureIdle(t, g.Addrs()["tcp"], f.dev1, f.key[f.dev1], n)
	t.Logf("%.0f B of heap and %.0f B of goroutine stack per idle connection", heap, stack)
	if heap > 3.5*1024 {
		t.Fatalf("idle connection holds %.0f B of heap, want <= 3.5 KB", heap)
	}
}
