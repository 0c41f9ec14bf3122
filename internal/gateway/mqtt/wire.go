package mqttgw

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"
)

// The proxy parses and encodes packets with mochi's codec (the packets
// package). The codec trusts its input in places (see guardConn), so every
// decode and encode here runs under recover: a packet that makes it panic
// is a malformed packet, and the connection ends.

var errMalformed = errors.New("mqtt: malformed packet")

// packetReader reads whole packets from one side of a proxied session.
type packetReader struct {
	r       *bufio.Reader
	conn    net.Conn
	max     int
	version byte // 0 until CONNECT is read
	idle    time.Duration
}

func newPacketReader(c net.Conn, max int) *packetReader {
	return &packetReader{r: bufio.NewReaderSize(c, 1024), conn: c, max: max}
}

// read returns the next packet.
func (p *packetReader) read() (packets.Packet, error) {
	var pk packets.Packet
	err := p.readInto(&pk)
	return pk, err
}

// readInto reads the next packet into *pk, which it overwrites.
func (p *packetReader) readInto(pk *packets.Packet) error {
	b, err := p.first()
	if err != nil {
		return err
	}
	return p.rest(b, pk)
}

// first waits for the first byte of the next packet. Long-lived pumps call
// it, then take a Packet from packetPool for rest: a Packet is most of a
// kilobyte, and keeping it out of idle sessions (and out of the frames
// that wait for input, whose goroutine stacks the runtime can then shrink)
// is what makes an idle proxied connection cheap.
func (p *packetReader) first() (byte, error) {
	if p.idle > 0 {
		_ = p.conn.SetReadDeadline(time.Now().Add(p.idle))
	}
	return p.r.ReadByte()
}

// rest reads the packet that starts with fixed header byte b. The fixed
// header is checked before the body is allocated, so a maximal remaining
// length costs nothing [MQTT-3.2.2-15] [MQTT-1.5.5].
func (p *packetReader) rest(b byte, pk *packets.Packet) error {
	*pk = packets.Packet{}
	if err := pk.FixedHeader.Decode(b); err != nil {
		return err
	}
	if pk.FixedHeader.Type == packets.Reserved {
		return errMalformed // [MQTT-2.1.2] type 0 is forbidden
	}
	n, _, err := packets.DecodeLength(p.r)
	if err != nil {
		return err
	}
	if n+1 > p.max {
		return packets.ErrPacketTooLarge
	}
	pk.FixedHeader.Remaining = n
	body := make([]byte, n)
	if _, err := io.ReadFull(p.r, body); err != nil {
		return err
	}
	return decodeInto(pk, body, p.version)
}

// packetPool recycles the packets pumps decode into.
var packetPool = sync.Pool{New: func() any { return new(packets.Packet) }}

// decodeInto decodes body into pk, whose fixed header is set.
func decodeInto(pk *packets.Packet, body []byte, version byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w (decoder: %v)", errMalformed, r)
		}
	}()
	pk.ProtocolVersion = version
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectDecode(body)
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Pubrec:
		err = pk.PubrecDecode(body)
	case packets.Pubrel:
		err = pk.PubrelDecode(body)
	case packets.Pubcomp:
		err = pk.PubcompDecode(body)
	case packets.Subscribe:
		err = pk.SubscribeDecode(body)
	case packets.Suback:
		err = pk.SubackDecode(body)
	case packets.Unsubscribe:
		err = pk.UnsubscribeDecode(body)
	case packets.Unsuback:
		err = pk.UnsubackDecode(body)
	case packets.Pingreq, packets.Pingresp:
		if len(body) != 0 {
			err = errMalformed // [MQTT-3.12.1] no variable header or payload
		}
	case packets.Disconnect:
		err = pk.DisconnectDecode(body)
	case packets.Auth:
		err = pk.AuthDecode(body)
	default:
		err = errMalformed
	}
	return err
}

// encodePacket encodes pk for its ProtocolVersion.
func encodePacket(pk *packets.Packet, buf *bytes.Buffer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w (encoder: %v)", errMalformed, r)
		}
	}()
	switch pk.FixedHeader.Type {
	case packets.Connect:
		return pk.ConnectEncode(buf)
	case packets.Connack:
		return pk.ConnackEncode(buf)
	case packets.Publish:
		return pk.PublishEncode(buf)
	case packets.Puback:
		return pk.PubackEncode(buf)
	case packets.Pubrec:
		return pk.PubrecEncode(buf)
	case packets.Pubrel:
		return pk.PubrelEncode(buf)
	case packets.Pubcomp:
		return pk.PubcompEncode(buf)
	case packets.Subscribe:
		return pk.SubscribeEncode(buf)
	case packets.Suback:
		return pk.SubackEncode(buf)
	case packets.Unsubscribe:
		return pk.UnsubscribeEncode(buf)
	case packets.Unsuback:
		return pk.UnsubackEncode(buf)
	case packets.Pingreq:
		return pk.PingreqEncode(buf)
	case packets.Pingresp:
		return pk.PingrespEncode(buf)
	case packets.Disconnect:
		return pk.DisconnectEncode(buf)
	case packets.Auth:
		return pk.AuthEncode(buf)
	}
	return errMalformed
}

// packetWriter writes packets to one side; safe for concurrent use (both
// pumps of a session write to both sides). Each write has a deadline, so a
// peer that stops reading ends the session instead of blocking it: the
// outbound queue is the socket buffer, then the connection is closed.
type packetWriter struct {
	mu      sync.Mutex
	conn    net.Conn
	version byte
	max     uint32 // the peer's Maximum Packet Size, 0 if none
	buf     bytes.Buffer
}

const writeTimeout = 10 * time.Second

var errTooLargeForPeer = errors.New("mqtt: packet exceeds the peer's maximum packet size")

func (w *packetWriter) write(pk packets.Packet) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	pk.ProtocolVersion = w.version
	pk.Mods.AllowResponseInfo = true
	pk.Mods.MaxSize = w.max // the codec drops optional properties that do not fit
	w.buf.Reset()
	if err := encodePacket(&pk, &w.buf); err != nil {
		return err
	}
	if w.max > 0 && uint32(w.buf.Len()) > w.max {
		return errTooLargeForPeer // [MQTT-3.1.2-24]
	}
	_ = w.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := w.conn.Write(w.buf.Bytes())
	if w.buf.Cap() > 64<<10 {
		w.buf = bytes.Buffer{} // do not pin a large packet's buffer
	}
	return err
}
