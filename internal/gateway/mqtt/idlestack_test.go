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
// The bar, 10 KB for both goroutines, is generous (measured 6.2 KB; the
// race detector's instrumentation makes frames bigger) but fails if
// CONNECT runs on the reader again.
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
