// SPDX-License-Identifier: MIT

package mqtt

import (
	"testing"

	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"
)

// TestOutQueue checks the queue that replaced the outbound channel: FIFO
// order, the pending bound (queued plus being written), one writer start
// per busy period, and no array kept by an idle queue after a burst.
func TestOutQueue(t *testing.T) {
	tests := []struct {
		name     string
		limit    int32
		push     int
		accepted int
	}{
		{"under the bound", 8, 5, 5},
		{"at the bound", 8, 8, 8},
		{"beyond the bound", 8, 20, 8},
		{"no bound", 0, 300, 300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var q outQueue
			var pending int32
			starts, accepted := 0, 0
			for i := range tc.push {
				ok, start := q.push(&packets.Packet{PacketID: uint16(i)}, &pending, tc.limit)
				if ok {
					accepted++
				}
				if start {
					starts++
				}
			}
			if accepted != tc.accepted || starts != 1 || int(pending) != accepted || int(q.queued.Load()) != accepted {
				t.Fatalf("accepted %d starts %d pending %d queued %d, want %d, 1, %d, %d",
					accepted, starts, pending, q.queued.Load(), tc.accepted, accepted, accepted)
			}
			for i := range accepted {
				pk, ok := q.pop()
				if !ok || pk.PacketID != uint16(i) {
					t.Fatalf("pop %d: %v %v", i, pk, ok)
				}
				pending-- // what writeQueued does after the write
			}
			if _, ok := q.pop(); ok || q.writing || q.queued.Load() != 0 {
				t.Fatalf("queue not empty or writer still marked after draining")
			}
			if accepted > keepArray && q.pks != nil {
				t.Fatalf("idle queue keeps an array of %d", cap(q.pks))
			}
			if _, start := q.push(&packets.Packet{}, &pending, tc.limit); !start {
				t.Fatal("push to an idle queue did not ask for a writer")
			}
		})
	}
}

// TestOutQueueInterleaved pushes and pops alternately with the queue never
// empty, so the array must be reused rather than grow with every push.
func TestOutQueueInterleaved(t *testing.T) {
	var q outQueue
	var pending int32
	next, want := 0, 0
	for range 3 {
		q.push(&packets.Packet{PacketID: uint16(next)}, &pending, 16)
		next++
	}
	for range 10000 {
		if ok, _ := q.push(&packets.Packet{PacketID: uint16(next)}, &pending, 16); !ok {
			t.Fatal("refused under the bound")
		}
		next++
		pk, ok := q.pop()
		if !ok || pk.PacketID != uint16(want) {
			t.Fatalf("got %v %v, want packet %d", pk, ok, want)
		}
		want++
		pending--
	}
	if cap(q.pks) > 16 {
		t.Fatalf("array grew to %d for at most 4 queued packets", cap(q.pks))
	}
}
