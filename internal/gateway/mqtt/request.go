package mqttgw

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"time"

	mqtt "github.com/fleetgate/fleetgate/internal/third_party/mochi"
	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"

	"github.com/fleetgate/fleetgate/internal/policy"
)

// MQTT 5 request/response for commands (MQTT 5 §4.10): the gateway
// publishes a command with a Response Topic and fresh Correlation Data,
// listens on the response topic, and hands back the first message there
// that carries the same Correlation Data. The device's reply is an
// ordinary PUBLISH, decided by the engine before it reaches any listener:
// only an identity allowed to publish on the reply topic can answer, and a
// reply on any other topic never matches.

// DefaultMaxWaitingReplies bounds the commands waiting for a reply when
// Options.MaxWaitingReplies is 0.
const DefaultMaxWaitingReplies = 256

// correlationLen is the size of the random Correlation Data: 128 bits, so
// a device cannot guess another request's value.
const correlationLen = 16

// maxReplyScan bounds the packets a proxy-mode request reads while it
// waits (other messages on the reply topic, acknowledgements).
const maxReplyScan = 1024

// Reply is a device's answer to a command.
type Reply struct {
	Payload     []byte
	ContentType string // the reply's Content Type property, "" when absent
}

// ErrBusy is returned by Request when MaxWaitingReplies requests are
// already waiting: the caller should retry later, not queue.
var ErrBusy = errors.New("mqtt: too many commands are waiting for a reply")

// Request publishes a command on topic with replyTopic as its MQTT 5
// Response Topic and waits for the matching reply, until ctx ends
// (capped at policy.MaxReplyTimeout). A timeout returns an error wrapping
// context.DeadlineExceeded. Like Publish, the command itself was
// authorized by the caller (the HTTP operation); the reply is decided by
// the engine as a PUBLISH of the device.
func (g *Gateway) Request(ctx context.Context, topic string, payload []byte, qos byte, replyTopic string) (Reply, error) {
	if err := g.checkPublish(topic, payload, qos); err != nil {
		return Reply{}, err
	}
	if !validTopicName(replyTopic) || replyTopic == topic {
		return Reply{}, fmt.Errorf("mqtt: request: invalid reply topic %q", replyTopic)
	}
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > policy.MaxReplyTimeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, policy.MaxReplyTimeout)
		defer cancel()
	}
	limit := int64(g.o.MaxWaitingReplies)
	if limit <= 0 {
		limit = DefaultMaxWaitingReplies
	}
	if g.waiting.Add(1) > limit {
		g.waiting.Add(-1)
		return Reply{}, ErrBusy
	}
	defer g.waiting.Add(-1)
	corr := make([]byte, correlationLen)
	_, _ = rand.Read(corr)
	if g.broker != nil {
		return g.requestEmbedded(ctx, topic, payload, qos, replyTopic, corr)
	}
	return g.requestUpstream(ctx, topic, payload, qos, replyTopic, corr)
}

// requestEmbedded listens on the reply topic through the broker's inline
// client (subscribed before the command is published, so no reply can be
// missed) and publishes the command from it.
func (g *Gateway) requestEmbedded(ctx context.Context, topic string, payload []byte, qos byte, replyTopic string, corr []byte) (Reply, error) {
	got := make(chan Reply, 1)
	// mochi calls the handler on the publisher's goroutine: it must not
	// block, and must copy what it keeps.
	handler := func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		if pk.TopicName != replyTopic || !bytes.Equal(pk.Properties.CorrelationData, corr) {
			return
		}
		select {
		case got <- Reply{Payload: bytes.Clone(pk.Payload), ContentType: pk.Properties.ContentType}:
		default: // a second copy of the reply (QoS 1 redelivery)
		}
	}
	id := int(g.inlineSubs.Add(1) & 0x7fffffff)
	if err := g.broker.Subscribe(replyTopic, id, handler); err != nil {
		return Reply{}, fmt.Errorf("mqtt: request: listen on %q: %w", replyTopic, err)
	}
	defer func() { _ = g.broker.Unsubscribe(replyTopic, id) }()
	inline, ok := g.broker.Clients.Get(mqtt.InlineClientId)
	if !ok {
		return Reply{}, errors.New("mqtt: request: the broker has no inline client")
	}
	err := g.broker.InjectPacket(inline, packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos},
		TopicName:   topic, Payload: bytes.Clone(payload), // deliveries share it (third_party/mochi); the caller owns payload
		PacketID:   uint16(qos), // as mochi's Publish: the inline client's QoS is not acknowledged
		Properties: packets.Properties{ResponseTopic: replyTopic, CorrelationData: corr},
	})
	if err != nil {
		return Reply{}, fmt.Errorf("mqtt: request: publish: %w", err)
	}
	select {
	case r := <-got:
		return r, nil
	case <-ctx.Done():
		return Reply{}, fmt.Errorf("mqtt: no reply on %s: %w", replyTopic, ctx.Err())
	}
}

// requestUpstream runs one short MQTT 5 session at the external broker per
// request: CONNECT, SUBSCRIBE to the reply topic, PUBLISH the command,
// read until the matching reply (acknowledging what the broker delivers),
// DISCONNECT. A session of its own keeps concurrent requests independent
// of each other and of the mediator's serialized publishes; commands
// waiting for a device are rare enough for a connection each, and
// MaxWaitingReplies bounds them.
func (g *Gateway) requestUpstream(ctx context.Context, topic string, payload []byte, qos byte, replyTopic string, corr []byte) (Reply, error) {
	deadline, _ := ctx.Deadline()
	m := &mediator{g: g}
	if err := m.ensure(ctx, deadline); err != nil {
		return Reply{}, fmt.Errorf("mqtt: request: connect upstream: %w", err)
	}
	// The HTTP client going away ends the wait at once. The connection is
	// captured: the callback may still run after drop() has cleared m.conn
	// (stop does not wait for a callback already started).
	conn := m.conn
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer func() {
		stop()
		_ = m.w.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}})
		m.drop()
	}()
	r, err := m.exchange(topic, payload, qos, replyTopic, corr)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		// The read deadline is the context's: it may fire first.
		cause := ctx.Err()
		if cause == nil && !time.Now().Before(deadline) {
			cause = context.DeadlineExceeded
		}
		if cause != nil {
			return Reply{}, fmt.Errorf("mqtt: no reply on %s: %w", replyTopic, cause)
		}
	}
	return r, err
}

// exchange subscribes, publishes and waits on m's fresh connection; the
// read deadline set by ensure bounds it in time, maxReplyScan in packets.
func (m *mediator) exchange(topic string, payload []byte, qos byte, replyTopic string, corr []byte) (Reply, error) {
	const subID, pubID = 1, 2
	err := m.w.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: subID,
		Filters: packets.Subscriptions{{Filter: replyTopic, Qos: 1}}})
	if err != nil {
		return Reply{}, err
	}
	pub := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, TopicName: topic, Payload: payload,
		Properties: packets.Properties{ResponseTopic: replyTopic, CorrelationData: corr}}
	if qos > 0 {
		pub.PacketID = pubID
	}
	var reply *Reply
	subscribed, acked := false, qos == 0
	for range maxReplyScan {
		pk, err := m.r.read()
		if err != nil {
			return Reply{}, err
		}
		switch pk.FixedHeader.Type {
		case packets.Suback:
			if pk.PacketID != subID || subscribed {
				continue
			}
			if len(pk.ReasonCodes) != 1 || pk.ReasonCodes[0] >= 0x80 {
				return Reply{}, fmt.Errorf("mqtt: the broker refused the reply subscription: %w", brokerRefusal{firstCode(pk.ReasonCodes)})
			}
			subscribed = true
			// Only now: a reply faster than the SUBACK cannot be lost.
			if err := m.w.write(pub); err != nil {
				return Reply{}, err
			}
		case packets.Puback, packets.Pubrec:
			if pk.PacketID != pubID || qos == 0 {
				continue
			}
			if pk.ReasonCode >= 0x80 {
				return Reply{}, brokerRefusal{pk.ReasonCode}
			}
			if pk.FixedHeader.Type == packets.Pubrec {
				if err := m.w.write(ack(packets.Pubrel, pubID, 0)); err != nil {
					return Reply{}, err
				}
				continue
			}
			acked = true
		case packets.Pubcomp:
			acked = acked || pk.PacketID == pubID
		case packets.Publish:
			if err := m.acknowledge(pk); err != nil {
				return Reply{}, err
			}
			if reply == nil && subscribed && pk.TopicName == replyTopic && bytes.Equal(pk.Properties.CorrelationData, corr) {
				reply = &Reply{Payload: pk.Payload, ContentType: pk.Properties.ContentType}
			}
		case packets.Pubrel:
			if err := m.w.write(ack(packets.Pubcomp, pk.PacketID, 0)); err != nil {
				return Reply{}, err
			}
		case packets.Disconnect:
			return Reply{}, fmt.Errorf("mqtt: the broker disconnected the request: reason 0x%02x", pk.ReasonCode)
		}
		if reply != nil && acked {
			return *reply, nil
		}
	}
	return Reply{}, errors.New("mqtt: request: too many unrelated packets on the reply topic")
}

// acknowledge completes the broker's side of a delivered PUBLISH.
func (m *mediator) acknowledge(pk packets.Packet) error {
	switch pk.FixedHeader.Qos {
	case 1:
		return m.w.write(ack(packets.Puback, pk.PacketID, 0))
	case 2:
		return m.w.write(ack(packets.Pubrec, pk.PacketID, 0))
	}
	return nil
}

func firstCode(c []byte) byte {
	if len(c) == 0 {
		return 0x80
	}
	return c[0]
}
