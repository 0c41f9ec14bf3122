package mqttgw

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"

	"github.com/fleetgate/fleetgate/internal/policy"
)

// Proxy mode: one device session <-> one upstream session.
//
// The device's connection ends here: its CONNECT is authenticated and
// bound like in embedded mode, then the gateway opens one connection to the
// external broker with the device's session key as client id
// (upstreamClientID), its protocol version and session settings, but the
// gateway's credentials. Two pumps relay packets:
//
//	device -> broker: PUBLISH decided (like OnPublish), SUBSCRIBE decided per
//	                  filter (refused filters answered here and merged into
//	                  the broker's SUBACK), the rest forwarded.
//	broker -> device: PUBLISH delivered only if the session may subscribe to
//	                  the concrete topic; otherwise the gateway completes the
//	                  QoS exchange with the broker itself.
//
// Topic aliases are switched off in both directions (TopicAliasMaximum 0
// in the CONNECT and CONNACK the gateway sends), so every PUBLISH names the
// topic the policy decides on.

// pendingCode marks a SUBACK slot the broker's answer fills.
const pendingCode = 0xFF

// errForbidden311 ends an MQTT 3.1.1 session after a forbidden PUBLISH.
var errForbidden311 = errors.New("mqtt: forbidden publish from an MQTT 3.1.1 client")

type proxySession struct {
	g    *Gateway
	dev  net.Conn
	up   net.Conn
	dial func(context.Context) (net.Conn, error)

	version byte
	s       *session
	devR    *packetReader
	upR     *packetReader
	devW    *packetWriter
	upW     *packetWriter

	mu      sync.Mutex
	subs    map[string]struct{}  // filters the session holds
	pending map[uint16]*subMerge // SUBSCRIBE forwarded, waiting for SUBACK
	localQ2 map[uint16]struct{}  // device QoS 2 answered here (3.1.1 drop): PUBREL too
	dropQ2  map[uint16]struct{}  // broker QoS 2 not delivered: its PUBREL answered here
	once    sync.Once
}

type subMerge struct {
	codes   []byte   // one per filter of the device's SUBSCRIBE
	filters []string // the filters forwarded, in order
}

// serveProxy is the proxy's listeners.EstablishFn.
func (g *Gateway) serveProxy(_ string, conn net.Conn) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return net.ErrClosed
	}
	g.proxyWG.Add(1)
	g.mu.Unlock()
	defer g.proxyWG.Done()
	return g.newProxySession(conn).run()
}

func (g *Gateway) newProxySession(dev net.Conn) *proxySession {
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	return &proxySession{g: g, dev: dev, dial: func(ctx context.Context) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", g.upstream)
	}, subs: map[string]struct{}{}, pending: map[uint16]*subMerge{}, localQ2: map[uint16]struct{}{}, dropQ2: map[uint16]struct{}{}}
}

// proxyOwner is connectRequest.owner in proxy mode: live sessions only
// (the external broker keeps persistent sessions out of our sight).
func (g *Gateway) proxyOwner(key string) *policy.Principal {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := g.owners[key]; s != nil {
		return s.principal
	}
	return nil
}

// upstreamClientID is a device session's client id at the external
// broker: its session key, after "<upstream user>-" when the gateway has
// an upstream user name. The key keeps two tenants' equal client ids apart
// at the broker too; the prefix is what a broker that binds client ids to
// credentials (another Fleetgate: "<principal id>-...") requires of the
// gateway's own identity, as for mediatorClientID.
func (g *Gateway) upstreamClientID(s *session) string {
	if g.o.UpstreamUsername == "" {
		return s.key
	}
	return g.o.UpstreamUsername + "-" + s.key
}

func (p *proxySession) closeAll() {
	p.once.Do(func() {
		_ = p.dev.Close()
		if p.up != nil {
			_ = p.up.Close()
		}
	})
}

// run relays the session until either side ends it, and returns once both
// pumps have stopped.
func (p *proxySession) run() error {
	defer func() {
		p.closeAll()
		if p.s != nil {
			p.g.unregister(p.s)
		}
	}()
	if err := p.handshake(); err != nil {
		return err
	}
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		err := p.upstreamPump()
		p.g.log.Debug("mqtt proxy upstream ended", "client_id", p.s.clientID, "err", errString(err))
		p.closeAll()
	}()
	err := p.devicePump()
	p.closeAll() // ends the other pump: its reads and writes fail at once
	<-upDone
	if errors.Is(err, errDone) {
		return nil
	}
	return err
}

// handshake reads and admits the device's CONNECT and opens the upstream
// session.
func (p *proxySession) handshake() error {
	g := p.g
	_ = p.dev.SetDeadline(time.Now().Add(connectTimeout))
	p.devR = newPacketReader(p.dev, g.o.MaxPacketSize)
	pk, err := p.devR.read()
	if err != nil {
		return err
	}
	if pk.FixedHeader.Type != packets.Connect {
		return packets.ErrProtocolViolationRequireFirstConnect // [MQTT-3.1.0-1]: close, no CONNACK
	}
	p.version = pk.ProtocolVersion
	p.devR.version = p.version
	p.devW = &packetWriter{conn: p.dev, version: p.version, max: pk.Properties.MaximumPacketSize}
	if code := pk.ConnectValidate(); code != packets.CodeSuccess {
		return p.refuse(code) // [MQTT-3.1.4-1]
	}
	if p.version < 5 && !pk.Connect.Clean && pk.Connect.ClientIdentifier == "" {
		return p.refuse(codeClientID) // [MQTT-3.1.3-8]
	}
	req := &connectRequest{pk: &pk, transport: "tcp", clientIP: hostOf(p.dev.RemoteAddr()), owner: g.proxyOwner}
	if gc, ok := p.dev.(*guardConn); ok {
		req.cert, req.transport = gc.peerCert(), gc.transport
	}
	s, code := g.admit(context.Background(), req)
	if code != packets.CodeSuccess {
		return p.refuse(code)
	}
	p.s = s
	return p.connectUpstream(&pk)
}

func hostOf(a net.Addr) string {
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// refuse answers CONNECT with a refusal in the device's protocol version
// (none for 3.1.1 protocol errors) and returns code as the error.
func (p *proxySession) refuse(code packets.Code) error {
	ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: code.Code}
	if p.version == 5 {
		ack.Properties.ReasonString = code.Reason
	} else if ack.ReasonCode = v3ConnackCode(code.Code); ack.ReasonCode == 0 {
		return code
	}
	_ = p.devW.write(ack)
	return code
}

// connectUpstream opens the session's upstream connection, relays the
// broker's CONNACK to the device and registers the session.
func (p *proxySession) connectUpstream(pk *packets.Packet) error {
	g, s := p.g, p.s
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	up, err := p.dial(ctx)
	if err != nil {
		g.log.Warn("mqtt upstream unreachable", "upstream", g.upstream, "err", err.Error())
		return p.refuse(codeUnavailable)
	}
	p.up = up
	_ = up.SetDeadline(time.Now().Add(connectTimeout))
	p.upR = newPacketReader(up, g.o.MaxPacketSize)
	p.upR.version = p.version
	p.upW = &packetWriter{conn: up, version: p.version}
	cp := *pk
	cp.Connect.ClientIdentifier = g.upstreamClientID(s) // stable per device, so the broker's session follows it
	cp.Connect.UsernameFlag = g.o.UpstreamUsername != ""
	cp.Connect.Username = []byte(g.o.UpstreamUsername)
	cp.Connect.PasswordFlag = g.o.UpstreamPassword != ""
	cp.Connect.Password = []byte(g.o.UpstreamPassword)
	cp.Properties.TopicAliasMaximum = 0
	cp.Properties.MaximumPacketSize = uint32(g.o.MaxPacketSize)
	cp.Properties.AuthenticationMethod, cp.Properties.AuthenticationData = "", nil
	if err := p.upW.write(cp); err != nil {
		return p.refuse(codeUnavailable)
	}
	ack, err := p.upR.read()
	if err != nil || ack.FixedHeader.Type != packets.Connack {
		g.log.Warn("mqtt upstream did not accept the connection", "upstream", g.upstream, "err", errString(err))
		return p.refuse(codeUnavailable)
	}
	if ack.ReasonCode != 0 {
		// The broker refused (the gateway's credentials or its ACL): the
		// device learns the broker's reason, in its own version.
		g.log.Warn("mqtt upstream refused the session", "client_id", s.clientID, "code", ack.ReasonCode)
		_ = p.devW.write(ack)
		return packets.ErrServerUnavailable
	}
	p.upW.max = ack.Properties.MaximumPacketSize
	// The device learns a client id only when it sent none, and never the
	// upstream one (its session key) [MQTT-3.2.2-16].
	ack.Properties.AssignedClientID = ""
	if pk.Connect.ClientIdentifier == "" {
		ack.Properties.AssignedClientID = s.clientID
	}
	ack.Properties.TopicAliasMaximum = 0
	if ack.Properties.MaximumPacketSize == 0 || int(ack.Properties.MaximumPacketSize) > g.o.MaxPacketSize {
		ack.Properties.MaximumPacketSize = uint32(g.o.MaxPacketSize)
	}
	s.kick = p.kick
	if !g.register(s) {
		_ = p.upW.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}})
		return p.refuse(codeBadCredentials)
	}
	if err := p.devW.write(ack); err != nil {
		return err
	}
	keepalive := pk.Connect.Keepalive
	if ack.Properties.ServerKeepAliveFlag {
		keepalive = ack.Properties.ServerKeepAlive // [MQTT-3.2.2-21]
	}
	// [MQTT-3.1.2-24]: one and a half keep-alive periods without a packet
	// from the device end the session. The broker's side has no such
	// deadline: it may be silent for as long as the device publishes QoS 0.
	p.devR.idle = time.Duration(keepalive) * 1500 * time.Millisecond
	_ = p.dev.SetDeadline(time.Time{})
	_ = up.SetDeadline(time.Time{})
	return nil
}

// kick is the session's kick: DISCONNECT with code to an MQTT 5 device,
// a normal DISCONNECT to the broker (which discards the Will
// [MQTT-3.1.2-10]: a revoked identity leaves no message behind), close.
func (p *proxySession) kick(code packets.Code) {
	time.AfterFunc(kickTimeout, p.closeAll)
	go func() {
		if p.version == 5 {
			_ = p.dev.SetWriteDeadline(time.Now().Add(kickTimeout / 2))
			_ = p.devW.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}, ReasonCode: code.Code,
				Properties: packets.Properties{ReasonString: code.Reason}})
		}
		_ = p.upW.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}})
		p.closeAll()
	}()
}

// protocolError ends the session for a device's protocol violation, with
// DISCONNECT and the reason for MQTT 5 [MQTT-4.13.1-1].
func (p *proxySession) protocolError(code packets.Code) error {
	if p.version == 5 {
		_ = p.devW.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}, ReasonCode: code.Code,
			Properties: packets.Properties{ReasonString: code.Reason}})
	}
	return code
}

// devicePump relays the device's packets until it disconnects or breaks a
// rule. Every iteration reads one packet, which the keep-alive deadline
// bounds in time.
func (p *proxySession) devicePump() error {
	for {
		b, err := p.devR.first()
		if err != nil {
			return err
		}
		if err := p.devicePacket(b); err != nil {
			return err
		}
	}
}

// devicePacket reads the rest of one device packet and handles it.
func (p *proxySession) devicePacket(b byte) error {
	pk := packetPool.Get().(*packets.Packet)
	defer release(pk)
	if err := p.devR.rest(b, pk); err != nil {
		var code packets.Code
		switch {
		case errors.As(err, &code) && code.Code >= 0x80:
			return p.protocolError(code) // malformed, too large
		case errors.Is(err, errMalformed):
			return p.protocolError(packets.ErrMalformedPacket)
		}
		return err
	}
	return p.fromDevice(pk)
}

// release returns a packet to the pool; the pool keeps no payload alive.
func release(pk *packets.Packet) {
	*pk = packets.Packet{}
	packetPool.Put(pk)
}

// errDone ends a pump on a DISCONNECT.
var errDone = errors.New("mqtt: session ended")

func (p *proxySession) fromDevice(pk *packets.Packet) error {
	switch pk.FixedHeader.Type {
	case packets.Publish:
		return p.devicePublish(*pk)
	case packets.Puback, packets.Pubrec, packets.Pubcomp, packets.Pingreq:
		return p.upW.write(*pk)
	case packets.Pubrel:
		if p.take(p.localQ2, pk.PacketID) {
			return p.devW.write(ack(packets.Pubcomp, pk.PacketID, 0))
		}
		return p.upW.write(*pk)
	case packets.Subscribe:
		return p.deviceSubscribe(*pk)
	case packets.Unsubscribe:
		return p.deviceUnsubscribe(*pk)
	case packets.Disconnect:
		// Forwarded with its reason: 0x04 asks the broker to send the
		// Will, anything else discards it [MQTT-3.14.4-3].
		_ = p.upW.write(*pk)
		return errDone
	case packets.Connect:
		return p.protocolError(packets.ErrProtocolViolationSecondConnect) // [MQTT-3.1.0-2]
	}
	// AUTH without an authentication method [MQTT-4.12.0-1], or a packet
	// only a server sends.
	return p.protocolError(codeProtocolError)
}

func ack(typ byte, id uint16, code byte) packets.Packet {
	return packets.Packet{FixedHeader: packets.FixedHeader{Type: typ, Qos: qosOfAck(typ)}, PacketID: id, ReasonCode: code}
}

// qosOfAck: PUBREL's fixed header has flags 0010 [MQTT-3.6.1-1].
func qosOfAck(typ byte) byte {
	if typ == packets.Pubrel {
		return 1
	}
	return 0
}

// take removes id from set and reports whether it was there.
func (p *proxySession) take(set map[uint16]struct{}, id uint16) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := set[id]; ok {
		delete(set, id)
		return true
	}
	return false
}

// devicePublish decides a device's PUBLISH (see hook.OnPublish for the
// answers per version).
func (p *proxySession) devicePublish(pk packets.Packet) error {
	if code := pk.PublishValidate(0); code != packets.CodeSuccess {
		return p.protocolError(code) // [MQTT-2.2.1-2] [MQTT-3.3.2-2] [MQTT-3.3.2-8]; aliases were not offered
	}
	if !validTopicName(pk.TopicName) {
		return p.protocolError(codeTopicInvalid) // [MQTT-3.3.2-1]
	}
	var props *packets.Properties
	if p.version == 5 {
		pk.Properties.User = stripReserved(pk.Properties.User)
		props = &pk.Properties
	}
	d := p.g.decidePublish(context.Background(), p.s, pk.TopicName, pk.Payload, props)
	if d.Allowed() {
		return p.upW.write(pk)
	}
	code := codeFor(d.Status)
	qos, id := pk.FixedHeader.Qos, pk.PacketID
	if p.version == 5 {
		switch qos {
		case 1:
			return p.devW.write(reasonAck(packets.Puback, id, code))
		case 2:
			return p.devW.write(reasonAck(packets.Pubrec, id, code)) // ends the exchange [MQTT-4.3.3-4]
		}
		return nil
	}
	if p.g.o.Forbidden311 != "drop" {
		return errForbidden311 // 3.1.1 [MQTT-3.3.5-2]: close the network connection
	}
	switch qos {
	case 1:
		return p.devW.write(ack(packets.Puback, id, 0))
	case 2:
		p.mu.Lock()
		p.localQ2[id] = struct{}{}
		p.mu.Unlock()
		return p.devW.write(ack(packets.Pubrec, id, 0))
	}
	return nil
}

func reasonAck(typ byte, id uint16, code packets.Code) packets.Packet {
	pk := ack(typ, id, code.Code)
	pk.Properties.ReasonString = code.Reason
	return pk
}

// subackCode is a SUBACK reason code in the device's version: 3.1.1 has
// one failure code, 0x80 [MQTT-3.9.3].
func (p *proxySession) subackCode(c byte) byte {
	if p.version < 5 && c >= 0x80 {
		return 0x80
	}
	return c
}

// deviceSubscribe decides each filter; allowed ones go to the broker, and
// the SUBACK is completed when the broker answers. A SUBSCRIBE with no
// allowed filter is answered here.
func (p *proxySession) deviceSubscribe(pk packets.Packet) error {
	if code := pk.SubscribeValidate(); code != packets.CodeSuccess {
		return p.protocolError(code)
	}
	codes := make([]byte, len(pk.Filters))
	var fwd packets.Subscriptions
	var fwdNames []string
	p.mu.Lock()
	held := len(p.subs)
	p.mu.Unlock()
	for i, sub := range pk.Filters {
		if _, _, isShared, _ := splitShared(sub.Filter); isShared && sub.NoLocal {
			return p.protocolError(packets.ErrProtocolViolationInvalidSharedNoLocal) // [MQTT-3.8.3-4]
		}
		p.mu.Lock()
		_, exists := p.subs[sub.Filter]
		p.mu.Unlock()
		if !exists && held >= maxSubscriptions {
			codes[i] = p.subackCode(codeQuotaExceeded.Code)
			continue
		}
		if code := p.g.decideFilter(context.Background(), p.s, sub.Filter, true); code != packets.CodeSuccess {
			codes[i] = p.subackCode(code.Code)
			continue
		}
		if !exists {
			held++
			p.mu.Lock()
			p.subs[sub.Filter] = struct{}{}
			p.mu.Unlock()
		}
		codes[i] = pendingCode
		fwd = append(fwd, sub)
		fwdNames = append(fwdNames, sub.Filter)
	}
	if len(fwd) == 0 {
		return p.devW.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Suback}, PacketID: pk.PacketID, ReasonCodes: codes})
	}
	p.mu.Lock()
	p.pending[pk.PacketID] = &subMerge{codes: codes, filters: fwdNames}
	p.mu.Unlock()
	pk.Filters = fwd
	return p.upW.write(pk)
}

func (p *proxySession) deviceUnsubscribe(pk packets.Packet) error {
	if code := pk.UnsubscribeValidate(); code != packets.CodeSuccess {
		return p.protocolError(code)
	}
	p.mu.Lock()
	for _, f := range pk.Filters {
		delete(p.subs, f.Filter)
	}
	p.mu.Unlock()
	return p.upW.write(pk) // unsubscribing never needs permission
}

// upstreamPump relays the broker's packets until it disconnects. A broker
// that breaks the protocol ends the session.
func (p *proxySession) upstreamPump() error {
	for {
		b, err := p.upR.first()
		if err != nil {
			return err
		}
		if err := p.upstreamPacket(b); err != nil {
			return err
		}
	}
}

func (p *proxySession) upstreamPacket(b byte) error {
	pk := packetPool.Get().(*packets.Packet)
	defer release(pk)
	if err := p.upR.rest(b, pk); err != nil {
		return err
	}
	return p.fromUpstream(pk)
}

func (p *proxySession) fromUpstream(pk *packets.Packet) error {
	switch pk.FixedHeader.Type {
	case packets.Publish:
		return p.upstreamPublish(*pk)
	case packets.Pubrel:
		if p.take(p.dropQ2, pk.PacketID) {
			return p.upW.write(ack(packets.Pubcomp, pk.PacketID, 0))
		}
		return p.devW.write(*pk)
	case packets.Suback:
		return p.mergeSuback(*pk)
	case packets.Puback, packets.Pubrec, packets.Pubcomp, packets.Unsuback, packets.Pingresp:
		return p.devW.write(*pk)
	case packets.Disconnect:
		if p.version == 5 {
			_ = p.devW.write(*pk) // the broker's reason, e.g. 0x8E session taken over
		}
		return errDone
	}
	return errMalformed
}

// upstreamPublish delivers a broker PUBLISH if the session may receive its
// topic now; otherwise, or if it exceeds the device's maximum packet size
// [MQTT-3.1.2-25], the gateway acknowledges it to the broker itself.
func (p *proxySession) upstreamPublish(pk packets.Packet) error {
	if pk.Properties.TopicAlias != 0 || !validTopicName(pk.TopicName) {
		return errMalformed // aliases were not offered to the broker
	}
	if p.g.mayReceive(p.s, pk.TopicName) {
		if p.version == 5 {
			if dep := p.g.deprecationProps(pk.TopicName); dep != nil {
				pk.Properties.User = withDeprecation(pk.Properties.User, dep)
			}
		}
		err := p.devW.write(pk)
		if !errors.Is(err, errTooLargeForPeer) {
			return err
		}
	}
	switch pk.FixedHeader.Qos {
	case 1:
		return p.upW.write(ack(packets.Puback, pk.PacketID, 0))
	case 2:
		p.mu.Lock()
		p.dropQ2[pk.PacketID] = struct{}{}
		p.mu.Unlock()
		return p.upW.write(ack(packets.Pubrec, pk.PacketID, 0))
	}
	return nil
}

// mergeSuback fills the broker's reason codes into the SUBACK slots of the
// filters that were forwarded, and forgets filters the broker refused.
func (p *proxySession) mergeSuback(pk packets.Packet) error {
	p.mu.Lock()
	m := p.pending[pk.PacketID]
	delete(p.pending, pk.PacketID)
	p.mu.Unlock()
	if m == nil {
		return p.devW.write(pk)
	}
	j := 0
	for i, c := range m.codes {
		if c != pendingCode {
			continue
		}
		if j >= len(pk.ReasonCodes) {
			return errMalformed // [MQTT-3.9.3-1] one code per filter
		}
		m.codes[i] = p.subackCode(pk.ReasonCodes[j])
		if pk.ReasonCodes[j] >= 0x80 {
			p.mu.Lock()
			delete(p.subs, m.filters[j])
			p.mu.Unlock()
		}
		j++
	}
	pk.ReasonCodes = m.codes
	return p.devW.write(pk)
}
