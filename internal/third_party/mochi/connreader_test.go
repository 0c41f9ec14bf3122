// SPDX-License-Identifier: MIT

package mqtt

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// lazyConn is a TCP connection read through LazyTCP, counting the buffers
// ReadLazy takes and gives back.
type lazyConn struct {
	net.Conn
	l         *LazyTCP
	gets, put atomic.Int32
}

func (c *lazyConn) ReadLazy(get func() []byte, put func()) ([]byte, error) {
	return c.l.ReadLazy(func() []byte { c.gets.Add(1); return get() }, func() { c.put.Add(1); put() })
}

// TestConnReader reads packets from a real TCP connection through a
// connReader: bytes sent together (pipelined packets, a packet larger than
// the buffer) must come out intact and in order, the buffer must be kept
// while it holds unread bytes and returned once it holds none.
func TestConnReader(t *testing.T) {
	for _, lazy := range []bool{false, true} {
		t.Run(map[bool]string{false: "one-byte wait", true: "lazy TCP"}[lazy], func(t *testing.T) { testConnReader(t, lazy) })
	}
}

func testConnReader(t *testing.T, lazy bool) {
	tests := []struct {
		name   string
		chunks [][]byte // written to the socket in this order, one write each
		reads  []int    // packet lengths read, first byte included
	}{
		{"one small packet", [][]byte{{0xC0, 0x00}}, []int{2}},
		{"pipelined packets", [][]byte{{0xC0, 0x00, 0x30, 0x03, 'a', 'b', 'c', 0xE0, 0x00}}, []int{2, 5, 2}},
		{"packet larger than the buffer", [][]byte{append([]byte{0x30}, bytes.Repeat([]byte{'x'}, 100)...)}, []int{101}},
		{"packet in pieces", [][]byte{{0x30}, {0x02}, {'h'}, {'i'}}, []int{4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = ln.Close() }()
			client, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = client.Close() }()
			server, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = server.Close() }()
			_ = server.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard

			var all []byte
			for _, c := range tc.chunks {
				all = append(all, c...)
			}
			go func() {
				for _, c := range tc.chunks {
					_, _ = client.Write(c)
					time.Sleep(time.Millisecond)
				}
			}()

			var conn net.Conn = server
			if lazy {
				conn = &lazyConn{Conn: server, l: NewLazyTCP(server)}
			}
			r := newConnReader(conn, 16)
			var got []byte
			for i, n := range tc.reads {
				b, err := r.first()
				if err != nil {
					t.Fatalf("packet %d: first byte: %v", i, err)
				}
				rest := make([]byte, n-1)
				if _, err := io.ReadFull(r, rest); err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				got = append(append(got, b), rest...)
				buffered := r.buffered() > 0
				r.release(false)
				if buffered != (r.rb != nil) {
					t.Fatalf("packet %d: buffer kept %v with unread bytes %v", i, r.rb != nil, buffered)
				}
			}
			if !bytes.Equal(got, all) {
				t.Fatalf("read %x, want %x", got, all)
			}
			r.release(true)
			if r.rb != nil {
				t.Fatal("buffer kept after the connection is done")
			}
		})
	}
}

// TestLazyTCPWaitsWithoutBuffer checks what LazyTCP is for: a reader
// waiting for a packet that has not arrived holds no buffer (the one its
// first attempt took is given back before it waits), and the packet, when
// it comes, is read with what follows it in one read.
func TestLazyTCPWaitsWithoutBuffer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Close() }()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = server.Close() }()
	_ = server.SetReadDeadline(time.Now().Add(10 * time.Second)) // hang guard

	lc := &lazyConn{Conn: server, l: NewLazyTCP(server)}
	if lc.l == nil {
		t.Fatal("NewLazyTCP refused a TCP connection")
	}
	r := newConnReader(lc, 64)
	got := make(chan byte, 1)
	go func() {
		b, err := r.first()
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	deadline := time.Now().Add(5 * time.Second)
	for lc.gets.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if g, p := lc.gets.Load(), lc.put.Load(); g == 0 || g != p {
		t.Fatalf("while waiting: %d buffers taken, %d given back", g, p)
	}
	if _, err := client.Write([]byte{0x30, 0x02, 'h', 'i', 0xC0, 0x00}); err != nil {
		t.Fatal(err)
	}
	if b := <-got; b != 0x30 {
		t.Fatalf("first byte %x", b)
	}
	if n := r.buffered(); n != 5 {
		t.Fatalf("%d bytes buffered after the first read, want the other 5", n)
	}

	// The connection ends: EOF, and the buffer goes back.
	r.release(false)
	if r.rb == nil {
		t.Fatal("buffer released with unread bytes")
	}
	rest := make([]byte, 5)
	if _, err := io.ReadFull(r, rest); err != nil {
		t.Fatal(err)
	}
	r.release(false)
	_ = client.Close()
	if _, err := r.first(); err != io.EOF {
		t.Fatalf("after close: %v, want EOF", err)
	}
	if r.rb != nil {
		t.Fatal("buffer kept after EOF")
	}
	if NewLazyTCP(&lazyConn{Conn: server}) != nil {
		t.Fatal("NewLazyTCP accepted a connection that is not *net.TCPConn")
	}
}
