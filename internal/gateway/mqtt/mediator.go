package mqttgw

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"
)

// mediator is the gateway's own MQTT 5 client session at the external
// broker, used by Gateway.Publish in proxy mode. Publishes are serialized
// on one connection: mediation is a low-rate path (commands to devices),
// and one exchange at a time keeps the client a page long. The connection
// is opened on first use and reopened once per Publish when it broke.
type mediator struct {
	g        *Gateway
	mu       sync.Mutex
	conn     net.Conn
	r        *packetReader
	w        *packetWriter
	id       uint16
	lastUsed time.Time
}

// mediatorIdle is how long the connection may rest before a Publish first
// checks it with PINGREQ (its keep-alive is twice that).
const mediatorIdle = 30 * time.Second

// brokerRefusal is a negative acknowledgement: retrying will not help.
type brokerRefusal struct{ code byte }

func (e brokerRefusal) Error() string {
	return fmt.Sprintf("mqtt: the broker refused the message: reason 0x%02x", e.code)
}

func (m *mediator) publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(writeTimeout)
	}
	var err error
	for attempt := range 2 {
		if err = m.ensure(ctx, deadline); err == nil {
			err = m.send(deadline, topic, payload, qos, retain)
		}
		var refused brokerRefusal
		if err == nil || errors.As(err, &refused) || ctx.Err() != nil {
			return err
		}
		m.drop()
		m.g.log.Debug("mqtt mediator connection lost", "attempt", attempt, "err", err.Error())
	}
	return err
}

// ensure connects if needed, and checks an idle connection with a ping.
func (m *mediator) ensure(ctx context.Context, deadline time.Time) error {
	if m.conn != nil && time.Since(m.lastUsed) > mediatorIdle {
		_ = m.conn.SetReadDeadline(deadline)
		if err := m.w.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}}); err != nil {
			m.drop()
		} else if _, err := m.await(packets.Pingresp, 0); err != nil {
			m.drop()
		}
	}
	if m.conn != nil {
		return nil
	}
	d := net.Dialer{Timeout: connectTimeout}
	c, err := d.DialContext(ctx, "tcp", m.g.upstream)
	if err != nil {
		return err
	}
	m.conn, m.r, m.w = c, newPacketReader(c, m.g.o.MaxPacketSize), &packetWriter{conn: c, version: 5}
	m.r.version = 5
	_ = c.SetReadDeadline(deadline)
	o := &m.g.o
	cp := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 5,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: uint16(2 * mediatorIdle / time.Second),
			ClientIdentifier: mediatorClientID(o.UpstreamUsername),
			UsernameFlag:     o.UpstreamUsername != "", Username: []byte(o.UpstreamUsername),
			PasswordFlag: o.UpstreamPassword != "", Password: []byte(o.UpstreamPassword)}}
	if err := m.w.write(cp); err != nil {
		m.drop()
		return err
	}
	ack, err := m.await(packets.Connack, 0)
	if err != nil {
		m.drop()
		return err
	}
	if ack.ReasonCode != 0 {
		m.drop()
		return brokerRefusal{ack.ReasonCode}
	}
	m.w.max = ack.Properties.MaximumPacketSize
	m.lastUsed = time.Now()
	return nil
}

// mediatorClientID is "<upstream user>-mediator-<random>": a broker that
// binds client ids to credentials (another Fleetgate does) accepts it.
func mediatorClientID(user string) string {
	if user == "" {
		user = "fleetgate"
	}
	return user + "-mediator-" + randomSuffix()
}

func (m *mediator) send(deadline time.Time, topic string, payload []byte, qos byte, retain bool) error {
	_ = m.conn.SetReadDeadline(deadline)
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos, Retain: retain}, TopicName: topic, Payload: payload}
	if qos > 0 {
		if m.id++; m.id == 0 {
			m.id = 1
		}
		pk.PacketID = m.id
	}
	if err := m.w.write(pk); err != nil {
		return err
	}
	m.lastUsed = time.Now()
	switch qos {
	case 1:
		a, err := m.await(packets.Puback, pk.PacketID)
		if err == nil && a.ReasonCode >= 0x80 {
			return brokerRefusal{a.ReasonCode}
		}
		return err
	case 2:
		a, err := m.await(packets.Pubrec, pk.PacketID)
		if err != nil {
			return err
		}
		if a.ReasonCode >= 0x80 {
			return brokerRefusal{a.ReasonCode}
		}
		if err := m.w.write(ack(packets.Pubrel, pk.PacketID, 0)); err != nil {
			return err
		}
		_, err = m.await(packets.Pubcomp, pk.PacketID)
		return err
	}
	return nil
}

// await reads until a packet of typ (and id, when not 0) arrives, at most
// 16 packets (nothing else is expected on a publish-only session), within
// the read deadline already set.
func (m *mediator) await(typ byte, id uint16) (packets.Packet, error) {
	for range 16 {
		pk, err := m.r.read()
		if err != nil {
			return pk, err
		}
		if pk.FixedHeader.Type == packets.Disconnect {
			return pk, fmt.Errorf("mqtt: the broker disconnected the mediator: reason 0x%02x", pk.ReasonCode)
		}
		if pk.FixedHeader.Type == typ && (id == 0 || pk.PacketID == id) {
			return pk, nil
		}
	}
	return packets.Packet{}, errors.New("mqtt: no acknowledgement from the broker")
}

func (m *mediator) drop() {
	if m.conn != nil {
		_ = m.conn.Close()
	}
	m.conn, m.r, m.w = nil, nil, nil
}

func (m *mediator) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.drop()
}
