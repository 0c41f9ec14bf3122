// SPDX-License-Identifier: MIT

package mqtt

import (
	"errors"
	"io"
	"net"
	"sync"
)

// LazyReader is implemented by a connection that can wait for its next
// bytes without holding a buffer (a plain TCP socket: the goroutine waits
// in the network poller). ReadLazy calls get for a buffer just before each
// read attempt and put when the attempt found no bytes, before it waits
// again, and returns the bytes read into the buffer get returned (a
// prefix of it). It returns errors.ErrUnsupported, without calling get,
// when the connection cannot (TLS, WebSocket); LazyTCP does the reading
// for a plain TCP connection.
//
// fleetgate: added, see connReader.
type LazyReader interface {
	ReadLazy(get func() []byte, put func()) ([]byte, error)
}

// connReader reads a client's packets through a buffer it holds only
// while bytes are buffered or a packet is being read.
//
// fleetgate: upstream gave every client a bufio.Reader of
// ClientNetReadBufferSize (2 KB) for its whole life, and an idle client's
// reader sits in it waiting for the next packet. Here an idle client holds
// no buffer: on a LazyReader connection the buffer is taken from a pool
// only once bytes have arrived, and one read system call fetches the first
// packet with whatever follows it; on other connections the wait for a
// packet's first byte reads that one byte into the client's own one-byte
// array, and the rest of the packet is read through a pooled buffer (one
// more read system call per packet that arrives when nothing is buffered).
// The buffer goes back to the pool once the packet is handled and nothing
// more is buffered.
type connReader struct {
	conn   net.Conn
	lazy   LazyReader    // conn, while it supports ReadLazy
	getBuf func() []byte // r.borrowed, made once for ReadLazy
	put    func()        // r.release(false), made once for ReadLazy
	pool   *sync.Pool    // of *readBuf of one size
	rb     *readBuf      // borrowed while bytes are buffered, else nil
	one    [1]byte
}

// readBuf is a pooled read buffer: b[r:w] are the bytes not yet read.
type readBuf struct {
	b    []byte
	r, w int
}

// maxEmptyReads bounds the reads returning no data and no error that
// first and fill tolerate, as bufio.Reader does.
const maxEmptyReads = 100

// readPools holds a pool of read buffers per buffer size, so servers with
// different ClientNetReadBufferSize options do not mix them.
var readPools sync.Map // int -> *sync.Pool

// newConnReader returns the reader of conn with pooled buffers of size.
func newConnReader(conn net.Conn, size int) *connReader {
	p, ok := readPools.Load(size)
	if !ok {
		p, _ = readPools.LoadOrStore(size, &sync.Pool{New: func() any { return &readBuf{b: make([]byte, size)} }})
	}
	r := &connReader{conn: conn, pool: p.(*sync.Pool)}
	if lr, ok := conn.(LazyReader); ok {
		r.lazy = lr
		r.getBuf = r.borrowed
		r.put = func() { r.release(false) }
	}
	return r
}

// buffered reports how many bytes are buffered and not yet read.
func (r *connReader) buffered() int {
	if r == nil || r.rb == nil {
		return 0
	}
	return r.rb.w - r.rb.r
}

// first waits for and returns the first byte of the next packet, without
// a buffer unless one is still borrowed with bytes in it.
func (r *connReader) first() (byte, error) {
	if r.buffered() > 0 {
		return r.readByte(), nil
	}
	if r.lazy != nil {
		for range maxEmptyReads {
			p, err := r.lazy.ReadLazy(r.getBuf, r.put)
			if errors.Is(err, errors.ErrUnsupported) {
				r.lazy = nil
				break
			}
			if len(p) > 0 {
				r.rb.r, r.rb.w = 0, len(p)
				return r.readByte(), nil
			}
			r.release(false)
			if err != nil {
				return 0, err
			}
		}
		if r.lazy != nil {
			return 0, io.ErrNoProgress
		}
	}
	for range maxEmptyReads {
		n, err := r.conn.Read(r.one[:])
		if n == 1 {
			return r.one[0], nil
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, io.ErrNoProgress
}

// borrow takes a buffer from the pool for the rest of a packet.
func (r *connReader) borrow() {
	if r.rb == nil {
		r.rb = r.pool.Get().(*readBuf)
		r.rb.r, r.rb.w = 0, 0
	}
}

// borrowed borrows a buffer and returns all of it, for ReadLazy (which is
// only called with nothing buffered).
func (r *connReader) borrowed() []byte {
	r.borrow()
	return r.rb.b
}

// readByte takes one buffered byte; the caller checked there is one.
func (r *connReader) readByte() byte {
	b := r.rb.b[r.rb.r]
	r.rb.r++
	return b
}

// fill reads into the borrowed buffer, which holds no unread bytes.
func (r *connReader) fill() error {
	r.rb.r, r.rb.w = 0, 0
	for range maxEmptyReads {
		n, err := r.conn.Read(r.rb.b)
		if n > 0 {
			r.rb.w = n
			return nil // an error with data comes back with the next read
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// ReadByte reads the next byte of the current packet.
func (r *connReader) ReadByte() (byte, error) {
	r.borrow()
	if r.rb.r == r.rb.w {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	return r.readByte(), nil
}

// Read reads the current packet's bytes. A read at least as large as the
// buffer with nothing buffered goes straight into p.
func (r *connReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.borrow()
	if r.rb.r == r.rb.w {
		if len(p) >= len(r.rb.b) {
			return r.conn.Read(p)
		}
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.rb.b[r.rb.r:r.rb.w])
	r.rb.r += n
	return n, nil
}

// release returns the buffer to the pool if it holds no unread bytes (the
// client pipelined nothing more), or unconditionally when the connection
// is done: the buffered bytes are then never read.
func (r *connReader) release(done bool) {
	if r == nil || r.rb == nil || (!done && r.rb.r < r.rb.w) {
		return
	}
	r.rb.r, r.rb.w = 0, 0
	r.pool.Put(r.rb)
	r.rb = nil
}
