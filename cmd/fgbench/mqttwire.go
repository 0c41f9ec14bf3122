package main

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// A minimal MQTT 3.1.1 / 5 client codec for the load generator. The
// generator shares the machine's cores with the broker it measures, so it
// must be cheap: no per-message allocation, no property maps, one write
// system call per packet (or per batch of acknowledgements). It knows only
// the packets a benchmark client sends and receives.

// Packet types (MQTT 5 §2.1.2).
const (
	typConnect   = 1
	typConnack   = 2
	typPublish   = 3
	typPuback    = 4
	typSubscribe = 8
	typSuback    = 9
	typPingresp  = 13
	typDisconn   = 14
)

// maxPacket bounds what the generator reads: benchmark packets are small.
const maxPacket = 64 << 10

var errMalformed = errors.New("mqtt: malformed packet")

// client is one benchmark connection.
type client struct {
	c       net.Conn
	r       *bufio.Reader
	version byte // 4 (3.1.1) or 5
	buf     []byte
}

// dialOptions say how to reach the broker and who to be.
type dialOptions struct {
	addr      string
	tls       *tls.Config // nil: plain TCP
	version   byte
	clientID  string
	user      string
	password  string
	keepAlive uint16
	timeout   time.Duration
}

// dial connects and completes CONNECT/CONNACK; a refusal is an error
// naming the reason code.
func dial(o dialOptions) (*client, error) {
	d := net.Dialer{Timeout: o.timeout}
	var c net.Conn
	var err error
	if o.tls != nil {
		c, err = tls.DialWithDialer(&d, "tcp", o.addr, o.tls)
	} else {
		c, err = d.Dial("tcp", o.addr)
	}
	if err != nil {
		return nil, err
	}
	cl := &client{c: c, r: bufio.NewReaderSize(c, 4096), version: o.version}
	_ = c.SetDeadline(time.Now().Add(o.timeout))
	if _, err := c.Write(appendConnect(nil, o)); err != nil {
		_ = c.Close()
		return nil, err
	}
	typ, body, err := cl.read()
	if err == nil && (typ>>4 != typConnack || len(body) < 2) {
		err = fmt.Errorf("mqtt: expected CONNACK, got packet type %d", typ>>4)
	}
	if err == nil && body[1] != 0 {
		err = fmt.Errorf("mqtt: connection refused: reason 0x%02x", body[1])
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return cl, nil
}

// appendLength appends an MQTT variable byte integer (§1.5.5).
func appendLength(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 128
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// appendConnect encodes CONNECT with a clean session, no Will.
func appendConnect(b []byte, o dialOptions) []byte {
	var vh []byte
	vh = appendString(vh, "MQTT")
	flags := byte(0x02) // clean start
	if o.user != "" {
		flags |= 0x80
	}
	if o.password != "" {
		flags |= 0x40
	}
	vh = append(vh, o.version, flags)
	vh = binary.BigEndian.AppendUint16(vh, o.keepAlive)
	if o.version == 5 {
		vh = append(vh, 0) // no properties
	}
	vh = appendString(vh, o.clientID)
	if o.user != "" {
		vh = appendString(vh, o.user)
	}
	if o.password != "" {
		vh = appendString(vh, o.password)
	}
	b = append(b, typConnect<<4)
	b = appendLength(b, len(vh))
	return append(b, vh...)
}

// appendSubscribe encodes SUBSCRIBE with one packet id for all filters.
func appendSubscribe(b []byte, version byte, id uint16, qos byte, filters []string) []byte {
	n := 2
	if version == 5 {
		n++
	}
	for _, f := range filters {
		n += 2 + len(f) + 1
	}
	b = append(b, typSubscribe<<4|0x02)
	b = appendLength(b, n)
	b = binary.BigEndian.AppendUint16(b, id)
	if version == 5 {
		b = append(b, 0)
	}
	for _, f := range filters {
		b = appendString(b, f)
		b = append(b, qos)
	}
	return b
}

// appendPublish encodes PUBLISH; id is ignored at QoS 0.
func appendPublish(b []byte, version byte, topic string, qos byte, id uint16, payload []byte) []byte {
	n := 2 + len(topic) + len(payload)
	if qos > 0 {
		n += 2
	}
	if version == 5 {
		n++
	}
	b = append(b, typPublish<<4|qos<<1)
	b = appendLength(b, n)
	b = appendString(b, topic)
	if qos > 0 {
		b = binary.BigEndian.AppendUint16(b, id)
	}
	if version == 5 {
		b = append(b, 0)
	}
	return append(b, payload...)
}

// appendPuback encodes PUBACK with reason Success, which both versions
// write as the two-byte form [MQTT-3.4.2.1].
func appendPuback(b []byte, id uint16) []byte {
	return append(b, typPuback<<4, 2, byte(id>>8), byte(id))
}

// read returns the next packet's first byte and body. The body aliases the
// client's buffer and is valid until the next read.
func (cl *client) read() (byte, []byte, error) {
	return readPacket(cl.r, &cl.buf)
}

// readPacket reads one packet from r into *buf (grown as needed, bounded
// by maxPacket).
func readPacket(r *bufio.Reader, buf *[]byte) (byte, []byte, error) {
	h, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return 0, nil, errMalformed // at most four length bytes [MQTT-1.5.5]
		}
		d, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(d&127) * mul
		mul *= 128
		if d&128 == 0 {
			break
		}
	}
	if n > maxPacket {
		return 0, nil, fmt.Errorf("mqtt: %d-byte packet exceeds the generator's %d", n, maxPacket)
	}
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	body := (*buf)[:n]
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return h, body, nil
}

// publish is a decoded PUBLISH; its slices alias the packet body.
type publish struct {
	qos     byte
	id      uint16
	topic   []byte
	payload []byte
}

// parsePublish decodes a PUBLISH body (first byte h) of the given version.
func parsePublish(h byte, body []byte, version byte) (publish, error) {
	p := publish{qos: h >> 1 & 3}
	if p.qos == 3 || len(body) < 2 {
		return p, errMalformed
	}
	tl := int(binary.BigEndian.Uint16(body))
	body = body[2:]
	if len(body) < tl {
		return p, errMalformed
	}
	p.topic, body = body[:tl], body[tl:]
	if p.qos > 0 {
		if len(body) < 2 {
			return p, errMalformed
		}
		p.id, body = binary.BigEndian.Uint16(body), body[2:]
	}
	if version == 5 {
		n, k, ok := varint(body)
		if !ok || len(body)-k < n {
			return p, errMalformed
		}
		body = body[k+n:]
	}
	p.payload = body
	return p, nil
}

// varint decodes a variable byte integer at the start of b, returning the
// value and the bytes it took.
func varint(b []byte) (int, int, bool) {
	n, mul := 0, 1
	for i := 0; i < 4 && i < len(b); i++ {
		n += int(b[i]&127) * mul
		mul *= 128
		if b[i]&128 == 0 {
			return n, i + 1, true
		}
	}
	return 0, 0, false
}

// subscribe sends SUBSCRIBE and checks that every filter got the QoS asked.
func (cl *client) subscribe(qos byte, filters []string, timeout time.Duration) error {
	_ = cl.c.SetDeadline(time.Now().Add(timeout))
	defer func() { _ = cl.c.SetDeadline(time.Time{}) }()
	if _, err := cl.c.Write(appendSubscribe(nil, cl.version, 1, qos, filters)); err != nil {
		return err
	}
	for range 16 { // a broker may deliver retained messages first
		h, body, err := cl.read()
		if err != nil {
			return err
		}
		if h>>4 != typSuback {
			continue
		}
		if len(body) < 2 {
			return errMalformed
		}
		codes := body[2:]
		if cl.version == 5 {
			n, k, ok := varint(codes)
			if !ok || len(codes) < k+n {
				return errMalformed
			}
			codes = codes[k+n:]
		}
		if len(codes) != len(filters) {
			return fmt.Errorf("mqtt: SUBACK has %d codes for %d filters", len(codes), len(filters))
		}
		for i, c := range codes {
			if c != qos {
				return fmt.Errorf("mqtt: subscription %q refused: reason 0x%02x", filters[i], c)
			}
		}
		return nil
	}
	return errors.New("mqtt: no SUBACK")
}
