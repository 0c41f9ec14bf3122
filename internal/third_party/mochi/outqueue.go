// SPDX-License-Identifier: MIT

package mqtt

import (
	"sync"
	"sync/atomic"

	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"
)

// outQueue is a client's queue of packets waiting for its writer.
//
// fleetgate: upstream gave every client a buffered channel of
// MaximumClientWritesPending packets, made at connect (1.2 KB at our 128),
// and a writer goroutine for the connection's whole life (a 2 KB stack, its
// g and the context's Done channel it selected on). An idle device needs
// neither: the queue's array is made by the first push and the writer
// goroutine runs only while the queue is not empty. The bound is the same
// (a push beyond MaximumClientWritesPending queued or being written is
// refused, which OnPublishDropped reports), and packets are still written
// one at a time in queue order by a single writer.
type outQueue struct {
	mu      sync.Mutex
	pks     []*packets.Packet // pks[head:] are queued
	head    int
	writing bool // a writer goroutine owns the queue until it finds it empty
	// queued is len(pks)-head, readable without mu, so WritePacket can
	// tell whether more writes follow (to coalesce them).
	queued atomic.Int32
}

// keepArray is the largest array an emptied queue keeps for its next
// burst: a few pointers, so an idle client holds next to nothing.
const keepArray = 4

// push queues pk unless limit packets are already queued or being
// written (pending counts both), and reports whether it was queued and
// whether the caller must start a writer.
func (q *outQueue) push(pk *packets.Packet, pending *int32, limit int32) (ok, start bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if limit > 0 && atomic.LoadInt32(pending) >= limit {
		return false, false
	}
	if len(q.pks) == cap(q.pks) && q.head > 0 {
		// Reuse the consumed front rather than growing the array.
		n := copy(q.pks, q.pks[q.head:])
		clear(q.pks[n:])
		q.pks = q.pks[:n]
		q.head = 0
	}
	q.pks = append(q.pks, pk)
	q.queued.Store(int32(len(q.pks) - q.head))
	atomic.AddInt32(pending, 1)
	start = !q.writing
	q.writing = true
	return true, start
}

// pop takes the next packet for the writer, or reports that the queue is
// empty, in which case the writer must exit: the next push starts another.
func (q *outQueue) pop() (*packets.Packet, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.pks) {
		q.writing = false
		if cap(q.pks) > keepArray {
			q.pks = nil
		} else {
			q.pks = q.pks[:0]
		}
		q.head = 0
		return nil, false
	}
	pk := q.pks[q.head]
	q.pks[q.head] = nil
	q.head++
	q.queued.Store(int32(len(q.pks) - q.head))
	return pk, true
}
