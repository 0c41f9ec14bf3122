package mqttgw

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"
)

// FuzzProxyPacket feeds arbitrary bytes to a proxy session after a valid
// CONNECT, from the device (data) and from the broker (up): the session
// must neither panic nor hang, whatever the bytes.
func FuzzProxyPacket(f *testing.F) {
	fx := newFixture(f, "")
	g, err := New(Options{Engine: fx.eng, Usage: fx.usage, Logger: testLogger(), Upstream: "tcp://127.0.0.1:1"})
	if err != nil {
		f.Fatal(err)
	}
	topic := "fleet/" + fx.dev1 + "/telemetry"
	for _, v := range []byte{4, 5} {
		pub := enc(f, v, publishPacket(topic, `{"temp":1}`, 1, 1))
		sub := enc(f, v, subscribePacket(2, "fleet/"+fx.dev1+"/commands", "fleet/+/commands", "$share/g/x"))
		f.Add(v, append(pub, sub...), enc(f, v, publishPacket("fleet/"+fx.dev1+"/commands", "{}", 2, 9)))
		f.Add(v, []byte{0x82, 6, 0, 1, 0, 0, 1, 'a'}, []byte{0x90, 3, 0, 2, 0})
		f.Add(v, []byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F}, []byte{0x62, 2, 0, 9})
		f.Add(v, []byte{0x62, 2, 0, 1, 0xC0, 0, 0xE0, 0}, []byte{0x30, 4, 0, 0, 0, 'x'})
	}
	f.Fuzz(func(t *testing.T, version byte, data, up []byte) {
		v := 4 + version%2
		dev, devSide := net.Pipe()
		p := g.newProxySession(devSide)
		p.dial = func(context.Context) (net.Conn, error) {
			c, brokerSide := net.Pipe()
			go fakeBroker(brokerSide, v, up)
			return c, nil
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = p.run()
		}()
		go func() { _, _ = io.Copy(io.Discard, dev) }()
		_ = dev.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = dev.Write(connectBytes(v, fx.dev1, fx.key[fx.dev1], nil))
		_, _ = dev.Write(data)
		_ = dev.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("proxy session did not end after the device closed")
		}
	})
}

// fakeBroker accepts the proxy's CONNECT, sends up, and reads until
// closed.
func fakeBroker(c net.Conn, version byte, up []byte) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := newPacketReader(c, 1<<20)
	r.version = version
	if pk, err := r.read(); err != nil || pk.FixedHeader.Type != packets.Connect {
		return
	}
	ack := []byte{0x20, 2, 0, 0}
	if version == 5 {
		ack = []byte{0x20, 3, 0, 0, 0}
	}
	if _, err := c.Write(append(ack, up...)); err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, c)
}

// FuzzEmbeddedPacket does the same to the embedded broker, through the
// connection guard: whatever a client sends after CONNECT, the broker
// must neither panic (mochi v2.7.9 has a decoder that can, see guardConn)
// nor keep the connection once the client is gone.
func FuzzEmbeddedPacket(f *testing.F) {
	fx := newFixture(f, "")
	g, err := New(Options{Engine: fx.eng, Usage: fx.usage, Logger: testLogger()})
	if err != nil {
		f.Fatal(err)
	}
	if err := g.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = g.Close() })
	topic := "fleet/" + fx.dev1 + "/telemetry"
	for _, v := range []byte{4, 5, 6, 7} { // 4, 5: pipe; 6, 7: TCP
		pv := 4 + v%2
		f.Add(v, append(enc(f, pv, publishPacket(topic, `{"temp":1}`, 2, 1)), enc(f, pv, subscribePacket(2, "fleet/+/commands", "#"))...))
		f.Add(v, []byte{0x82, 6, 0, 1, 0, 0, 1, 'a'})
		f.Add(v, []byte{0x30, 4, 0, 0, 0, 'x', 0x62, 2, 0, 1, 0xF0, 0})
	}
	// The version byte's bit 1 chooses the transport: a pipe, where the broker
	// waits for a packet's first byte in a one-byte array, or a real TCP
	// connection, where it reads through LazyTCP (see connReader).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = ln.Close() })
	f.Fuzz(func(t *testing.T, version byte, data []byte) {
		v := 4 + version%2
		var client, server net.Conn
		if version&2 == 0 {
			client, server = net.Pipe()
		} else {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			client, server = c, s
		}
		gc := &guardConn{Conn: server, transport: "tcp", max: g.o.MaxPacketSize}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = g.broker.EstablishConnection("tcp", gc)
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		_ = client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = client.Write(connectBytes(v, fmt.Sprintf("%s-fz%d", fx.dev1, v), fx.key[fx.dev1], nil))
		_, _ = client.Write(data)
		_ = client.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("broker kept a connection whose client is gone")
		}
	})
}
