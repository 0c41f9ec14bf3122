// SPDX-License-Identifier: MIT

package mqtt

import (
	"bufio"
	"io"
	"net"
	"sync"
)

// connReader reads a client's packets through a buffer it holds only
// while bytes are buffered or a packet is being read.
//
// fleetgate: upstream gave every client a bufio.Reader of
// ClientNetReadBufferSize (2 KB) for its whole life, and an idle client's
// reader sits in it waiting for the next packet. Here the wait for a
// packet's first byte reads that one byte into the client's own one-byte
// array, and only the rest of the packet is read through a pooled
// bufio.Reader, which goes back to the pool once the packet is handled and
// nothing more is buffered. The price is one more read system call per
// packet that arrives when nothing is buffered.
type connReader struct {
	conn net.Conn
	pool *sync.Pool    // of *bufio.Reader of one size
	br   *bufio.Reader // borrowed while bytes are buffered, else nil
	one  [1]byte
}

// maxEmptyReads bounds the reads returning no data and no error that
// first tolerates, as bufio.Reader does.
const maxEmptyReads = 100

// readPools holds a pool of bufio.Readers per buffer size, so servers with
// different ClientNetReadBufferSize options do not mix their readers.
var readPools sync.Map // int -> *sync.Pool

// newConnReader returns the reader of conn with pooled buffers of size.
func newConnReader(conn net.Conn, size int) *connReader {
	p, ok := readPools.Load(size)
	if !ok {
		p, _ = readPools.LoadOrStore(size, &sync.Pool{New: func() any { return bufio.NewReaderSize(nil, size) }})
	}
	return &connReader{conn: conn, pool: p.(*sync.Pool)}
}

// first waits for and returns the first byte of the next packet, without
// a buffer unless one is still borrowed with bytes in it.
func (r *connReader) first() (byte, error) {
	if r.br != nil {
		return r.br.ReadByte()
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
	if r.br == nil {
		r.br = r.pool.Get().(*bufio.Reader)
		r.br.Reset(r.conn)
	}
}

// ReadByte reads the next byte of the current packet.
func (r *connReader) ReadByte() (byte, error) {
	r.borrow()
	return r.br.ReadByte()
}

// Read reads the current packet's bytes.
func (r *connReader) Read(p []byte) (int, error) {
	r.borrow()
	return r.br.Read(p)
}

// release returns the buffer to the pool if it holds no unread bytes (the
// client pipelined nothing more), or unconditionally when the connection
// is done: the buffered bytes are then never read.
func (r *connReader) release(done bool) {
	if r == nil || r.br == nil || (!done && r.br.Buffered() > 0) {
		return
	}
	r.br.Reset(nil) // no reference to the connection from the pool
	r.pool.Put(r.br)
	r.br = nil
}
