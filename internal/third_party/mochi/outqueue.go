// SPDX-License-Identifier: MIT

package mqtt

import (
	"bytes"
	"sync"
	"sync/atomic"

	"github.com/fleetgate/fleetgate/internal/third_party/mochi/mempool"
)

// outQueue is a client's queue of encoded packets waiting for its writer.
//
// fleetgate: upstream gave every client a buffered channel of
// MaximumClientWritesPending packets, made at connect (1.2 KB at our 128),
// and a writer goroutine for the connection's whole life (a 2 KB stack, its
// g and the context's Done channel it selected on), and queued each
// delivery as a heap copy of packets.Packet (800 bytes, one allocation per
// subscriber per message) that the writer encoded into a fresh buffer and
// wrote with one system call.
//
// Here a delivery is encoded by the goroutine that publishes it and its
// bytes are appended to the queue's buffer; the writer takes everything
// queued at once and writes it with one system call. Under load a busy
// subscriber's deliveries are written in batches, with no allocation per
// delivery once the pooled buffers have grown. An idle client holds
// nothing: the buffer comes from a pool at the first push and goes back
// when the writer finds the queue empty, and the writer goroutine runs only
// while something is queued. Bytes are written in queue order by a single
// writer.
//
// The bound is on what waits (upstream's channel capacity, with the
// writer holding one packet more): MaximumClientWritesPending packets or
// maxQueuedBytes, whichever comes first, and the batch being written holds
// at most what was queued. A refused push is reported to OnPublishDropped
// (Fleetgate disconnects the slow subscriber). Counting the batch being
// written against the bound instead made a subscriber that paused for a
// moment look slow: a publish burst queued behind one large write.
type outQueue struct {
	mu      sync.Mutex
	buf     *bytes.Buffer // encoded packets waiting, in order; nil when empty and idle
	packets int32         // packets in buf
	msgs    int32         // of which PUBLISH
	writing bool          // a writer goroutine owns the queue until it finds it empty
}

// maxQueuedBytes bounds the bytes waiting in a client's queue. A packet
// larger than that is queued when nothing else is.
const maxQueuedBytes = 1 << 20

// outBufPool holds the queues' buffers. A buffer grown beyond 64 KB (a
// burst of large packets) is left to the garbage collector.
var outBufPool = mempool.NewBuffer(64 << 10)

// push appends one encoded packet unless limit packets (0: no limit) or
// maxQueuedBytes are already waiting, and reports whether it was queued
// and whether the caller must start a writer. pending counts the packets
// queued or being written; the writer subtracts what it wrote.
func (q *outQueue) push(b []byte, publish bool, limit int32, pending *int32) (ok, start bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if limit > 0 && q.packets >= limit || q.packets > 0 && q.buf.Len()+len(b) > maxQueuedBytes {
		return false, false
	}
	if q.buf == nil {
		q.buf = outBufPool.Get()
	}
	q.buf.Write(b)
	q.packets++
	if publish {
		q.msgs++
	}
	atomic.AddInt32(pending, 1)
	start = !q.writing
	q.writing = true
	return true, start
}

// take hands the writer everything queued, leaving spare (emptied; nil
// lets the next push take a pooled buffer) in its place, with the number
// of packets and of PUBLISH packets in it. When nothing is queued it ends
// the writer's turn instead (the next push starts another) and gives
// spare back to the pool, reporting ok false.
func (q *outQueue) take(spare *bytes.Buffer) (b *bytes.Buffer, packets, msgs int32, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.packets == 0 {
		q.writing = false
		if q.buf != nil {
			outBufPool.Put(q.buf)
			q.buf = nil
		}
		if spare != nil {
			outBufPool.Put(spare)
		}
		return nil, 0, 0, false
	}
	if spare != nil {
		spare.Reset()
	}
	b, q.buf = q.buf, spare
	packets, msgs = q.packets, q.msgs
	q.packets, q.msgs = 0, 0
	return b, packets, msgs, true
}

// queued reports how many packets wait in the queue (not those being
// written).
func (q *outQueue) queued() int32 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.packets
}
