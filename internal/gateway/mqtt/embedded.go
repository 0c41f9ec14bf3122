package mqttgw

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	mqtt "github.com/fleetgate/fleetgate/internal/third_party/mochi"
	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"

	"github.com/fleetgate/fleetgate/internal/policy"
)

// Embedded broker tuning. Stock mochi sizes every client for a busy
// server (8192 pending writes, 8192 inflight messages, 65535 topic
// aliases); a fleet gateway holds many mostly idle devices, so each
// connection gets small, bounded buffers and queues instead.
const (
	// netBufferSize is the size of the pooled read buffers.
	netBufferSize = 2 << 10
	// maxPendingWrites bounds the packets waiting in a client's outbound
	// queue, besides its 1 MiB bound on their bytes (mochi's outQueue). A
	// subscriber that lets it fill up is disconnected (OnPublishDropped):
	// a slow reader must not make the broker buffer without bound. A
	// backend on a fleet wildcard must ride out a short pause (a GC, a
	// burst from thousands of devices) without being cut off, so the
	// bound is generous; an idle client's queue holds nothing.
	maxPendingWrites = 4096
	// maxInflight bounds the QoS 1/2 messages stored per client, sent and
	// unacknowledged or waiting for the client's Receive Maximum (also
	// while a persistent session is offline); beyond it mochi drops the
	// message for that client. receiveMaximum bounds the client's own in
	// flight towards us [MQTT-3.3.4-9]. Neither costs anything when idle.
	maxInflight    = 1024
	receiveMaximum = 64
	// Inflight and retained messages expire after a day, persistent
	// sessions an hour after their client went away.
	maxMessageExpiry = 24 * 3600
	maxSessionExpiry = 3600
	// sysInterval is how often mochi refreshes $SYS topics; each refresh
	// stops the world to read memory statistics, and no client may
	// subscribe to $SYS anyway (no channel declares it).
	sysInterval = 3600
	// deniedFilter replaces a filter the policy refused, so mochi does
	// not subscribe it (it is invalid: '#' not last [MQTT-4.7.1-1]);
	// OnSubscribed then puts the policy's reason code in the SUBACK.
	deniedFilter = "#/fleetgate-denied"
)

// newBroker builds the embedded broker with the policy hook.
func newBroker(g *Gateway) *mqtt.Server {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(g.o.MaxPacketSize)
	caps.MaximumClientWritesPending = maxPendingWrites
	caps.MaximumInflight = maxInflight
	caps.ReceiveMaximum = receiveMaximum
	caps.MaximumMessageExpiryInterval = maxMessageExpiry
	caps.MaximumSessionExpiryInterval = maxSessionExpiry
	// No topic aliases in either direction: every PUBLISH names its
	// topic, which the policy decides on, and per-client alias maps
	// would be another unbounded-looking cost.
	caps.TopicAliasMaximum = 0
	// Acknowledgements do not echo the publisher's user properties.
	caps.Compatibilities.NoInheritedPropertiesOnAck = true
	srv := mqtt.New(&mqtt.Options{
		Capabilities:            caps,
		ClientNetReadBufferSize: netBufferSize, // no write buffer: the fork queues encoded packets (outQueue)
		Logger:                  slog.New(demoted{g.log.Handler()}),
		SysTopicResendInterval:  sysInterval,
		InlineClient:            true, // Gateway.Publish
	})
	h := &hook{g: g, srv: srv, noAliases: mqtt.NewOutboundTopicAliases(0)}
	_ = srv.AddHook(h, nil) // fails only for a nil hook
	return srv
}

// demoted logs mochi's informational and warning records at debug level:
// they are per-connection chatter ("error processing packet" for every bad
// client), while the gateway logs what an operator needs itself.
type demoted struct{ slog.Handler }

func demote(l slog.Level) slog.Level {
	if l < slog.LevelError {
		return slog.LevelDebug
	}
	return l
}

func (d demoted) Enabled(ctx context.Context, l slog.Level) bool {
	return d.Handler.Enabled(ctx, demote(l))
}

func (d demoted) Handle(ctx context.Context, r slog.Record) error {
	r.Level = demote(r.Level)
	return d.Handler.Handle(ctx, r)
}

func (d demoted) WithAttrs(a []slog.Attr) slog.Handler { return demoted{d.Handler.WithAttrs(a)} }
func (d demoted) WithGroup(n string) slog.Handler      { return demoted{d.Handler.WithGroup(n)} }

// hook is the embedded broker's policy enforcement point. mochi asks it
// at each protocol step; it translates the step into a policy question
// and the answer into MQTT. Where it is not asked, mochi denies: without
// a session (no accepted CONNECT) ACL checks fail.
type hook struct {
	mqtt.HookBase
	g         *Gateway
	srv       *mqtt.Server
	noAliases *mqtt.OutboundTopicAliases // shared: maximum 0 never stores
}

var _ mqtt.Hook = (*hook)(nil)

// gatewayPrincipal owns the inline client's id, so no device can claim it.
var gatewayPrincipal = &policy.Principal{Kind: "gateway", ID: mqtt.InlineClientId}

// ID implements mqtt.Hook.
func (h *hook) ID() string { return "fleetgate-policy" }

// Provides implements mqtt.Hook.
func (h *hook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnSubscribe, mqtt.OnSubscribed,
		mqtt.OnPublish, mqtt.OnPacketEncode, mqtt.OnPublishDropped, mqtt.OnDisconnect:
		return true
	}
	return false
}

// sessionOf returns the session of a broker client, nil before CONNECT is
// accepted and for the inline client.
func sessionOf(cl *mqtt.Client) *session {
	if gc, ok := cl.Net.Conn.(*guardConn); ok {
		return gc.sess.Load()
	}
	return nil
}

// owner is connectRequest.owner for the embedded broker: the identity of
// the client (connected or holding a persistent session) with this
// session key, which is its mochi client id.
func (h *hook) owner(id string) *policy.Principal {
	cl, ok := h.srv.Clients.Get(id)
	if !ok {
		return nil
	}
	if cl.Net.Inline {
		return gatewayPrincipal
	}
	if s := sessionOf(cl); s != nil {
		return s.principal
	}
	return nil
}

// OnConnect authenticates the CONNECT and binds the client id (admit).
// mochi sends no CONNACK when this hook fails, so refusals send their own.
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	gc, ok := cl.Net.Conn.(*guardConn)
	if !ok {
		return h.refuse(cl, codeNotAuthorized)
	}
	s, code := h.g.admit(context.Background(), &connectRequest{pk: &pk, cert: gc.peerCert(), clientIP: gc.remoteIP(),
		transport: gc.transport, owner: h.owner})
	if code != packets.CodeSuccess {
		return h.refuse(cl, code)
	}
	cl.ID = s.key // mochi replaces sessions by cl.ID: namespaced per tenant
	if pk.Connect.ClientIdentifier == "" {
		cl.Properties.Props.AssignedClientID = s.clientID // [MQTT-3.2.2-16]
	}
	cl.Properties.Props.TopicAliasMaximum = 0
	cl.State.TopicAliases.Outbound = h.noAliases
	s.kick = func(c packets.Code) { h.kick(cl, s, c) }
	gc.sess.Store(s)
	if !h.g.register(s) {
		gc.sess.Store(nil)
		return h.refuse(cl, codeBadCredentials)
	}
	return nil
}

func (h *hook) refuse(cl *mqtt.Client, code packets.Code) error {
	_ = h.srv.SendConnack(cl, code, false, nil) // [MQTT-3.2.2-7]; OnPacketEncode maps 3.1.1 codes
	return code
}

// OnConnectAuthenticate implements mqtt.Hook: OnConnect already decided.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	return sessionOf(cl) != nil
}

// kick ends a session from another goroutine: DISCONNECT for MQTT 5
// (bounded by a write deadline), then close; a timer closes the connection
// regardless after kickTimeout.
func (h *hook) kick(cl *mqtt.Client, s *session, code packets.Code) {
	atomic.StoreUint32(&cl.Properties.Will.Flag, 0)
	time.AfterFunc(kickTimeout, func() { cl.Stop(code) })
	go func() {
		if s.version == 5 {
			_ = cl.Net.Conn.SetWriteDeadline(time.Now().Add(kickTimeout / 2))
			_ = h.srv.DisconnectClient(cl, code) // [MQTT-3.14.2-1]
		}
		cl.Stop(code)
	}()
}

// OnDisconnect implements mqtt.Hook.
func (h *hook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	if s := sessionOf(cl); s != nil {
		h.g.unregister(s)
	}
}

// OnACLCheck implements mqtt.Hook. For write (PUBLISH) it only requires a
// session: OnPublish makes the decision, because it can answer with a
// precise reason code and sees the topic after alias resolution. For read
// it is asked twice: with each SUBSCRIBE filter (after OnSubscribe, which
// decided and metered it; this re-check spends no tokens), and with the
// concrete topic of every message about to be delivered, which is how a
// subscription that was allowed stops receiving once the policy changes.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	s := sessionOf(cl)
	if s == nil {
		return false
	}
	if write {
		return true
	}
	if strings.ContainsAny(topic, "+#") || strings.HasPrefix(topic, "$share/") {
		return h.g.decideFilter(context.Background(), s, topic, false) == packets.CodeSuccess
	}
	return h.g.mayReceive(s, topic)
}

// OnSubscribe decides every filter of a SUBSCRIBE. Refused filters are
// replaced by deniedFilter so mochi does not subscribe them, and their
// reason codes wait in the session for OnSubscribed. A session holds at
// most maxSubscriptions filters; more get 0x97 Quota exceeded.
func (h *hook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	s := sessionOf(cl)
	codes := make([]byte, len(pk.Filters))
	held := cl.State.Subscriptions.Len()
	for i := range pk.Filters {
		sub := &pk.Filters[i]
		_, exists := cl.State.Subscriptions.Get(sub.Filter)
		switch {
		case s == nil:
			codes[i] = codeNotAuthorized.Code
		case !exists && held >= maxSubscriptions:
			codes[i] = codeQuotaExceeded.Code
		default:
			codes[i] = h.g.decideFilter(context.Background(), s, sub.Filter, true).Code
			if codes[i] == 0 && !exists {
				held++
			}
		}
		if codes[i] >= 0x80 {
			sub.Filter = deniedFilter
		}
	}
	if s != nil {
		s.subCodes = codes
	}
	return pk
}

// OnSubscribed puts the policy's reason codes into the SUBACK. mochi
// passes the slice its SUBACK is encoded from, so writing into it is how a
// hook chooses per-filter codes (mochi v2.7.9 has no other way). MQTT
// 3.1.1 has a single failure code, 0x80, which mochi already set.
func (h *hook) OnSubscribed(cl *mqtt.Client, _ packets.Packet, reasonCodes []byte) {
	s := sessionOf(cl)
	if s == nil {
		return
	}
	codes := s.subCodes
	s.subCodes = nil
	if s.version != 5 || len(codes) != len(reasonCodes) {
		return
	}
	for i, c := range codes {
		if c >= 0x80 {
			reasonCodes[i] = c // [MQTT-3.9.3-1]
		}
	}
}

// OnPublish decides a PUBLISH from a client and enforces the answer:
//   - MQTT 5: QoS 1 gets PUBACK and QoS 2 PUBREC with the reason code
//     (mochi would answer QoS 2 with a PUBACK); QoS 0 is dropped, having
//     no acknowledgement to carry a code [MQTT-3.3.4-1].
//   - MQTT 3.1.1 has no negative acknowledgement: the connection is closed
//     ("disconnect") or the message acknowledged and dropped ("drop")
//     3.1.1 [MQTT-3.3.5-2].
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil // Gateway.Publish, authorized by its caller
	}
	s := sessionOf(cl)
	if s == nil {
		return pk, packets.ErrRejectPacket
	}
	var props *packets.Properties
	if s.version == 5 {
		pk.Properties.User = stripReserved(pk.Properties.User)
		props = &pk.Properties
	}
	d := h.g.decidePublish(context.Background(), s, pk.TopicName, pk.Payload, props)
	if d.Allowed() {
		return pk, nil
	}
	code := codeFor(d.Status)
	if s.version == 5 {
		if pk.FixedHeader.Qos > 0 {
			typ := packets.Puback
			if pk.FixedHeader.Qos == 2 {
				typ = packets.Pubrec // [MQTT-4.3.3-4]
			}
			_ = cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: typ}, PacketID: pk.PacketID,
				ReasonCode: code.Code, Properties: packets.Properties{ReasonString: code.Reason}})
		}
		return pk, packets.ErrRejectPacket
	}
	if h.g.o.Forbidden311 == "drop" {
		return pk, packets.CodeSuccessIgnore // acknowledged as usual, never delivered or retained
	}
	cl.Stop(code)
	return pk, packets.ErrRejectPacket
}

// OnPacketEncode adjusts packets on their way out: CONNACK refusals get
// 3.1.1 return codes for 3.1.1 clients (or none, for protocol errors
// [MQTT-3.1.4-1]: a packet of type Reserved cannot be encoded, so mochi
// writes nothing and closes), a successful MQTT 5 CONNACK announces the
// maximum packet size [MQTT-3.2.2-15], and MQTT 5 deliveries on a
// deprecated channel carry its deprecation properties.
func (h *hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	switch pk.FixedHeader.Type {
	case packets.Publish, packets.Connack, packets.Disconnect:
		// A client's Request Problem Information 0 forbids reason strings
		// and user properties on other packets only [MQTT-3.1.2-29]; mochi
		// v2.7.9 strips them from PUBLISH too, which would drop the
		// publisher's user properties [MQTT-3.3.2-17] and ours.
		pk.Mods.DisallowProblemInfo = false
	}
	switch pk.FixedHeader.Type {
	case packets.Connack:
		if pk.ProtocolVersion < 5 {
			if pk.ReasonCode >= 0x80 {
				if c := v3ConnackCode(pk.ReasonCode); c != 0 {
					pk.ReasonCode = c
				} else {
					pk.FixedHeader.Type = packets.Reserved
				}
			}
			return pk
		}
		if pk.ReasonCode == 0 {
			pk.Properties.MaximumPacketSize = uint32(h.g.o.MaxPacketSize)
		}
	case packets.Publish:
		if pk.ProtocolVersion == 5 {
			if dep := h.g.deprecationProps(pk.TopicName); dep != nil {
				pk.Properties.User = withDeprecation(pk.Properties.User, dep)
			}
		}
	}
	return pk
}

// OnPublishDropped is called when a subscriber's outbound queue is full:
// it is not reading. It is disconnected rather than buffered for.
func (h *hook) OnPublishDropped(cl *mqtt.Client, _ packets.Packet) {
	if cl.Closed() {
		return
	}
	h.g.log.Info("mqtt slow subscriber disconnected", "client_id", cl.ID, "max_queued", maxPendingWrites)
	cl.Stop(codeQuotaExceeded)
}
