//go:build unix

package httpgw

import (
	"net"
	"syscall"
)

// peekIdle reports whether an idle connection has nothing to read and is
// still open, without blocking and without consuming: recv with MSG_PEEK
// and MSG_DONTWAIT answers EAGAIN for a healthy idle socket, 0 bytes for
// one the peer closed. (A read with a deadline in the past would not do:
// Go's poller fails it before asking the kernel.)
func peekIdle(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = n < 0 && (rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK)
		return true // never wait for readiness
	})
	return err == nil && alive
}
