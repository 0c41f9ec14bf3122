// SPDX-License-Identifier: MIT

//go:build unix

package mqtt

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// LazyTCP reads a TCP connection's bytes into a buffer taken only once
// they have arrived, which is what an idle client's reader needs (see
// LazyReader). It reads the socket directly through its syscall.RawConn:
// the goroutine waits in the network poller, as net.Conn.Read does, and
// deadlines apply as they do to Read.
//
// fleetgate: added, see connReader.
type LazyTCP struct {
	conn    net.Conn
	raw     syscall.RawConn
	attempt func(fd uintptr) bool // l.read, made once
	get     func() []byte
	put     func()
	p       []byte
	err     error
}

// NewLazyTCP returns the lazy reader of conn, nil when conn is not a plain
// TCP connection.
func NewLazyTCP(conn net.Conn) *LazyTCP {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	l := &LazyTCP{conn: conn, raw: raw}
	l.attempt = l.read
	return l
}

// ReadLazy implements LazyReader, returning the bytes read (a prefix of
// the buffer get returned). Reads are not concurrent: one goroutine reads
// a client's packets.
func (l *LazyTCP) ReadLazy(get func() []byte, put func()) ([]byte, error) {
	l.get, l.put = get, put
	err := l.raw.Read(l.attempt)
	p, rerr := l.p, l.err
	l.get, l.put, l.p, l.err = nil, nil, nil, nil
	switch {
	case err != nil: // deadline, closed
		return nil, &net.OpError{Op: "read", Net: "tcp", Source: l.conn.LocalAddr(), Addr: l.conn.RemoteAddr(), Err: err}
	case rerr != nil:
		return nil, &net.OpError{Op: "read", Net: "tcp", Source: l.conn.LocalAddr(), Addr: l.conn.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case len(p) == 0:
		return nil, io.EOF
	}
	return p, nil
}

// read is one attempt: it returns false (wait for the socket to become
// readable) when there is nothing to read, having given the buffer back.
func (l *LazyTCP) read(fd uintptr) bool {
	p := l.get()
	for {
		n, err := syscall.Read(int(fd), p)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			l.put()
			return false
		case err != nil:
			l.err = err
		default:
			l.p = p[:n]
		}
		return true
	}
}
