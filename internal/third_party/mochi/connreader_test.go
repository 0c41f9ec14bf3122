// SPDX-License-Identifier: MIT

package mqtt

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// TestConnReader reads packets from a real TCP connection through a
// connReader: bytes sent together (pipelined packets, a packet larger than
// the buffer) must come out intact and in order, the buffer must be kept
// while it holds unread bytes and returned once it holds none.
func TestConnReader(t *testing.T) {
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

			r := newConnReader(server, 16)
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
				buffered := r.br != nil && r.br.Buffered() > 0
				r.release(false)
				if buffered != (r.br != nil) {
					t.Fatalf("packet %d: buffer kept %v with unread bytes %v", i, r.br != nil, buffered)
				}
			}
			if !bytes.Equal(got, all) {
				t.Fatalf("read %x, want %x", got, all)
			}
			r.release(true)
			if r.br != nil {
				t.Fatal("buffer kept after the connection is done")
			}
		})
	}
}
