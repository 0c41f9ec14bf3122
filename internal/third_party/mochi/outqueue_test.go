// SPDX-License-Identifier: MIT

package mqtt

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// packetBytes is a stand-in for an encoded packet: its number, big-endian.
func packetBytes(i int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(i)) }

// TestOutQueue checks the queue of encoded packets that replaced the
// outbound channel: bytes in push order, the pending bound (queued plus
// being written), one writer start per busy period, packet and PUBLISH
// counts, and no buffer kept by an idle queue.
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
			var want []byte
			for i := range tc.push {
				ok, start := q.push(packetBytes(i), i%2 == 0, tc.limit, &pending)
				if ok {
					accepted++
					want = append(want, packetBytes(i)...)
				}
				if start {
					starts++
				}
			}
			if accepted != tc.accepted || starts != 1 || int(pending) != accepted || int(q.queued()) != accepted {
				t.Fatalf("accepted %d starts %d pending %d queued %d, want %d, 1, %d, %d",
					accepted, starts, pending, q.queued(), tc.accepted, accepted, accepted)
			}
			b, n, msgs, ok := q.take(nil)
			if !ok || !bytes.Equal(b.Bytes(), want) || int(n) != accepted || int(msgs) != (accepted+1)/2 {
				t.Fatalf("take: ok %v, %d packets, %d publish, %d bytes; want %d packets, %d publish, %d bytes",
					ok, n, msgs, b.Len(), accepted, (accepted+1)/2, len(want))
			}
			// While the writer holds b, the bound counts what waits: the
			// queue takes limit more, then refuses.
			if tc.limit > 0 {
				for i := range tc.limit + 1 {
					if ok, start := q.push(packetBytes(0), false, tc.limit, &pending); ok != (i < tc.limit) || start {
						t.Fatalf("push %d while writing: ok %v start %v", i, ok, start)
					}
				}
				b2, n2, _, _ := q.take(nil)
				pending -= n2
				outBufPool.Put(b2)
			}
			pending -= n // what writeQueued does after the write
			if pending != 0 {
				t.Fatalf("pending %d after the writes", pending)
			}
			if _, _, _, ok := q.take(b); ok || q.writing || q.buf != nil || q.queued() != 0 {
				t.Fatalf("queue not empty, writer still marked or buffer kept after draining")
			}
			if _, start := q.push(packetBytes(0), false, tc.limit, &pending); !start {
				t.Fatal("push to an idle queue did not ask for a writer")
			}
		})
	}
}

// TestOutQueueBytes checks the byte bound: small packets stop at
// maxQueuedBytes, and a packet larger than the bound is queued alone.
func TestOutQueueBytes(t *testing.T) {
	var q outQueue
	var pending int32
	kb := make([]byte, 1024)
	accepted := 0
	for range maxQueuedBytes/1024 + 10 {
		if ok, _ := q.push(kb, true, 0, &pending); ok {
			accepted++
		}
	}
	if accepted != maxQueuedBytes/1024 {
		t.Fatalf("%d KB queued, want %d", accepted, maxQueuedBytes/1024)
	}
	b, n, _, _ := q.take(nil)
	pending -= n
	huge := make([]byte, 2*maxQueuedBytes)
	if ok, _ := q.push(huge, true, 0, &pending); !ok {
		t.Fatal("a packet larger than the bound refused by an empty queue")
	}
	if ok, _ := q.push(kb, true, 0, &pending); ok {
		t.Fatal("queued behind a packet larger than the bound")
	}
	q.take(b)
}

// TestOutQueueInterleaved pushes while the writer takes, as under load:
// every byte arrives once and in order, and the two buffers are swapped
// rather than reallocated.
func TestOutQueueInterleaved(t *testing.T) {
	var q outQueue
	var pending int32
	var got, want []byte
	var spare *bytes.Buffer
	next := 0
	for round := range 2000 {
		for range round%5 + 1 {
			if ok, _ := q.push(packetBytes(next), true, 16, &pending); !ok {
				t.Fatal("refused under the bound")
			}
			want = append(want, packetBytes(next)...)
			next++
		}
		b, n, _, ok := q.take(spare)
		if !ok {
			t.Fatal("take found nothing queued")
		}
		got = append(got, b.Bytes()...)
		pending -= n
		spare = b
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("bytes out of order or lost: %d written, %d queued", len(got), len(want))
	}
	if _, _, _, ok := q.take(spare); ok || pending != 0 {
		t.Fatalf("queue not drained: pending %d", pending)
	}
}
