package mqttgw

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/fleetgate/fleetgate/internal/third_party/mochi/packets"

	"github.com/fleetgate/fleetgate/internal/policy"
	"github.com/fleetgate/fleetgate/internal/telemetry"
)

// Limits that keep one client from costing the gateway unbounded work or
// memory. They are constants, not options, until someone needs to tune them.
const (
	// maxSubscriptions caps the filters one session holds; SUBSCRIBE
	// filters beyond it get 0x97 Quota exceeded.
	maxSubscriptions = 100
	// maxClientIDLen bounds client identifiers (the spec allows 65535).
	maxClientIDLen = 256
	// connectTimeout bounds the time from accepting a connection to the
	// end of CONNECT (TLS handshake included).
	connectTimeout = 10 * time.Second
	// kickTimeout bounds how long a revoked session may take to close.
	kickTimeout = 700 * time.Millisecond
	// maxRecvCache bounds the per-session cache of delivery decisions, and
	// maxCachedTopic the topics worth caching.
	maxRecvCache   = 256
	maxCachedTopic = 256
)

// Reason codes the gateway sends. The Reason strings deliberately differ
// from mochi's own values: mochi translates a few of its own codes to MQTT
// 3.1.1 return codes by value equality, and OnPacketEncode does it for ours
// (v3ConnackCode), so 0x86 becomes 3.1.1's 0x04 and not mochi's 0x05.
var (
	codeProtocolError   = packets.Code{Code: 0x82, Reason: "protocol error"}
	codeClientID        = packets.Code{Code: 0x85, Reason: "client identifier not valid for these credentials"}
	codeBadCredentials  = packets.Code{Code: 0x86, Reason: "bad user name or password"}
	codeNotAuthorized   = packets.Code{Code: 0x87, Reason: "not authorized"}
	codeUnavailable     = packets.Code{Code: 0x88, Reason: "server unavailable"}
	codeBadAuthMethod   = packets.Code{Code: 0x8C, Reason: "bad authentication method"}
	codeFilterInvalid   = packets.Code{Code: 0x8F, Reason: "topic filter invalid"}
	codeTopicInvalid    = packets.Code{Code: 0x90, Reason: "topic name invalid"}
	codeTopicAlias      = packets.Code{Code: 0x94, Reason: "topic alias invalid"}
	codePacketTooLarge  = packets.Code{Code: 0x95, Reason: "packet too large"}
	codeQuotaExceeded   = packets.Code{Code: 0x97, Reason: "quota exceeded"}
	codePayloadInvalid  = packets.Code{Code: 0x99, Reason: "payload format invalid"}
	codeSharedNotForYou = packets.Code{Code: 0x87, Reason: "shared subscription group belongs to another identity"}
)

// codeFor maps a policy status to the MQTT 5 reason code of a PUBACK,
// PUBREC, SUBACK or CONNACK (MQTT 5 §3.4.2.1, §3.9.3). Every denial the
// device could not fix by changing its payload or pace is 0x87 Not
// authorized, so an undeclared topic and a foreign device's topic look
// the same from outside.
func codeFor(st policy.Status) packets.Code {
	switch st {
	case policy.RateLimited:
		return codeQuotaExceeded
	case policy.Invalid:
		return codePayloadInvalid
	case policy.TooLarge:
		return codePacketTooLarge
	}
	return codeNotAuthorized
}

// v3ConnackCode maps an MQTT 5 CONNACK reason code to the MQTT 3.1.1
// return code (3.1.1 §3.2.2.3), or 0 when 3.1.1 has none and the connection
// must be closed without a CONNACK [MQTT-3.1.4-1] (malformed CONNECT,
// protocol errors).
func v3ConnackCode(c byte) byte {
	switch c {
	case 0x84:
		return 0x01 // unacceptable protocol version
	case 0x85:
		return 0x02 // identifier rejected
	case 0x88, 0x89, 0x8A, 0x9F:
		return 0x03 // server unavailable
	case 0x86:
		return 0x04 // bad user name or password
	case 0x81, 0x82:
		return 0
	}
	return 0x05 // not authorized
}

// session is one authenticated MQTT connection: who it is, which protocol
// version it speaks, and how to end it. Both modes create it at CONNECT and
// register it with the gateway, so Revalidate can find it.
type session struct {
	principal *policy.Principal
	// cert is the client certificate the session authenticated with, nil
	// when it used an API key; revalidation checks that exact credential.
	cert     *x509.Certificate
	clientID string // as the device sent it (or was assigned)
	// key is the session's client id inside the broker: sessionKey.
	key       string
	username  string // informational only
	clientIP  string
	transport string // "tcp", "tls" or "ws"
	version   byte   // 3, 4 (3.1.1) or 5
	// kick ends the session with an MQTT 5 DISCONNECT reason where the
	// version allows it. It is safe to call more than once, from any
	// goroutine, and returns at once.
	kick func(packets.Code)

	// subCodes carries the SUBACK reason codes decided in OnSubscribe to
	// OnSubscribed (embedded mode), and pub is decidePublish's scratch
	// space, reused so a PUBLISH allocates no request. Only the session's
	// reader goroutine touches them.
	subCodes []byte
	pub      *publishScratch // allocated on the first PUBLISH

	goneLogged atomic.Int64 // unix seconds of the last retired-channel log

	mu   sync.Mutex
	snap *policy.Snapshot // the snapshot recv was decided with
	recv map[string]bool  // concrete topic -> may receive
}

type publishScratch struct {
	req  policy.Request
	pbuf [policy.MaxParams]policy.Param

	// The route of the last topic published, matched in snap: a device
	// publishes on the same few topics all its life, so the topic match
	// (and the route's metrics handle) is reused until the topic changes
	// or a new snapshot is installed. Every publish is still decided by
	// the engine; only the lookup that depends on nothing but (snapshot,
	// topic) is skipped. topic is an owned copy the cached params alias.
	snap    *policy.Snapshot
	topic   string
	rt      *policy.Route
	nparams int
	metrics *telemetry.RouteMetrics
}

// route returns the publish route of topic in snap and its parameters,
// from the one-entry cache when it holds this topic for this snapshot.
func (sc *publishScratch) route(snap *policy.Snapshot, topic string) (*policy.Route, []policy.Param) {
	if sc.snap == snap && sc.topic == topic && sc.rt != nil {
		return sc.rt, sc.pbuf[:sc.nparams]
	}
	sc.snap, sc.rt, sc.metrics = nil, nil, nil
	rt, params := snap.MatchMQTT("publish", topic, sc.pbuf[:0])
	if rt == nil || len(topic) > maxCachedTopic {
		return rt, params
	}
	// Parameters alias the topic they were matched in: match again in a
	// copy that the cache owns, so they stay valid after this packet.
	owned := strings.Clone(topic)
	rt, params = snap.MatchMQTT("publish", owned, sc.pbuf[:0])
	sc.snap, sc.topic, sc.rt, sc.nparams = snap, owned, rt, len(params)
	return rt, params
}

// clientIDBound reports whether a client id belongs to principal p: the id
// is p.ID itself or starts with p.ID followed by '-' (a device running two
// connections uses "dev1-a" and "dev1-b"). This is what stops one identity
// from taking over another's session [MQTT-3.1.4-3]: the broker replaces
// sessions by client id, so only the owner may present it.
func clientIDBound(id string, p *policy.Principal) bool {
	return id == p.ID || (len(id) > len(p.ID)+1 && strings.HasPrefix(id, p.ID) && id[len(p.ID)] == '-')
}

// sessionKey is the client id a session has inside the embedded broker,
// in the gateway's session registry and (behind upstreamPrefix) at an
// upstream broker: "<tenant>/<client id>". Client ids are unique only
// within a tenant, so two tenants' devices may both be "meter-1" without
// taking over each other's session [MQTT-3.1.4-3]. Tenant ids are names
// without '/' (model.ValidName), so the first '/' splits the key and no two
// (tenant, client id) pairs share one. Devices never see the key: their
// CONNACK carries an Assigned Client Identifier only when they sent none,
// and then it is the bare id [MQTT-3.2.2-16].
func sessionKey(p *policy.Principal, clientID string) string {
	return p.Tenant + "/" + clientID
}

// sameIdentity reports whether two principals are the same identity.
func sameIdentity(a, b *policy.Principal) bool {
	return a != nil && b != nil && a.Tenant == b.Tenant && a.ID == b.ID && a.Kind == b.Kind
}

// connectRequest is what admit needs from a CONNECT.
type connectRequest struct {
	pk        *packets.Packet
	cert      *x509.Certificate
	clientIP  string
	transport string
	// owner returns the identity currently holding a session key
	// (sessionKey), if any, so that ids that are ambiguous under the prefix rule ("dev1-x" is
	// valid for both "dev1" and "dev1-x") still cannot be taken over.
	owner func(key string) *policy.Principal
}

// admit authenticates a CONNECT and binds its client id: the credential
// (API key in the password, a device certificate Fleetgate issued, or a
// TLS client certificate pinned to an application) must name a principal,
// the client id must belong to it, and a Will must be a message the
// principal may publish. An empty client id is assigned
// "<principal>-<random>" [MQTT-3.1.3-6]. It returns the new session, or the
// MQTT 5 reason code to refuse with.
func (g *Gateway) admit(ctx context.Context, c *connectRequest) (*session, packets.Code) {
	pk := c.pk
	now := time.Now()
	if pk.Properties.AuthenticationMethod != "" {
		return nil, codeBadAuthMethod // enhanced authentication is not offered [MQTT-4.12.0-1]
	}
	creds := policy.Credentials{PeerCert: c.cert}
	if pk.Connect.PasswordFlag {
		creds.APIKey = string(pk.Connect.Password)
		creds.Username = string(pk.Connect.Username)
	}
	snap := g.o.Engine.Snapshot()
	p, st, reason := g.o.Engine.AuthenticateSession(snap, creds, now)
	if st != policy.Allow {
		g.denial(reason)
		if g.o.Devices != nil && creds.APIKey != "" {
			// The password is an API key or a device token: try both.
			g.o.Devices.Refused(snap, policy.Credentials{APIKey: creds.APIKey, Bearer: creds.APIKey}, "mqtt", c.clientIP, now)
		}
		g.log.Debug("mqtt connect refused", "reason", reason, "client_id", pk.Connect.ClientIdentifier, "remote", c.clientIP)
		if reason == policy.ReasonNoCredentials {
			return nil, codeNotAuthorized
		}
		return nil, codeBadCredentials
	}
	id := pk.Connect.ClientIdentifier
	switch {
	case id == "":
		id = p.ID + "-" + randomSuffix()
	case len(id) > maxClientIDLen || !clientIDBound(id, p):
		g.denial("client-id")
		return nil, codeClientID
	}
	key := sessionKey(p, id)
	if c.owner != nil {
		if o := c.owner(key); o != nil && !sameIdentity(o, p) {
			g.denial("client-id-takeover")
			return nil, codeClientID
		}
	}
	var cert *x509.Certificate
	if c.cert != nil && (p.Kind == "device" || p.Credential == "certificate") {
		cert = c.cert
	}
	if g.o.Devices != nil {
		g.o.Devices.Seen(p, connectFirmware(pk), now)
	}
	s := &session{principal: p, cert: cert, clientID: id, key: key, username: string(pk.Connect.Username), clientIP: c.clientIP,
		transport: c.transport, version: pk.ProtocolVersion}
	if pk.Connect.WillFlag {
		// The Will is published by the broker on the principal's behalf,
		// bypassing PUBLISH processing, so it is decided now.
		if !validTopicName(pk.Connect.WillTopic) {
			return nil, codeTopicInvalid // [MQTT-3.1.3-11]
		}
		var props *packets.Properties
		if pk.ProtocolVersion == 5 {
			props = &pk.Connect.WillProperties
		}
		if d := g.decidePublish(ctx, s, pk.Connect.WillTopic, pk.Connect.WillPayload, props); !d.Allowed() {
			return nil, codeFor(d.Status)
		}
	}
	return s, packets.CodeSuccess
}

// randomSuffix is 12 hex characters for assigned client ids.
func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validTopicName checks a PUBLISH (or Will) topic name: non-empty, no
// wildcards [MQTT-3.3.2-2], no NUL [MQTT-1.5.4-2], valid UTF-8 [MQTT-1.5.4-1],
// at most 65535 bytes [MQTT-1.5.4-1].
func validTopicName(t string) bool {
	return t != "" && len(t) <= 65535 && !strings.ContainsAny(t, "+#\x00") && utf8.ValidString(t)
}

// validFilter checks a topic filter: non-empty [MQTT-4.7.3-1], '#' only as
// the whole last level [MQTT-4.7.1-1], '+' only as a whole level
// [MQTT-4.7.1-2], no NUL, valid UTF-8.
func validFilter(f string) bool {
	if f == "" || len(f) > 65535 || strings.IndexByte(f, 0) >= 0 || !utf8.ValidString(f) {
		return false
	}
	n := strings.Count(f, "/") + 1
	for i, seg := range strings.SplitN(f, "/", n) {
		if strings.ContainsAny(seg, "+#") && len(seg) != 1 {
			return false
		}
		if seg == "#" && i != n-1 {
			return false
		}
	}
	return true
}

// splitShared splits "$share/{group}/{filter}" [MQTT-4.8.2-1]. ok is false
// for other filters; valid is false for a malformed shared filter.
func splitShared(f string) (group, filter string, ok, valid bool) {
	rest, ok := strings.CutPrefix(f, "$share/")
	if !ok {
		return "", f, false, true
	}
	group, filter, found := strings.Cut(rest, "/")
	valid = found && group != "" && filter != "" && !strings.ContainsAny(group, "+#")
	return group, filter, true, valid
}

// decidePublish asks the engine whether the session may publish payload on
// topic. Undeclared topics are recorded as shadow traffic. props are the
// MQTT 5 properties of the message (user properties are offered to
// bindings and rules as headers), nil for 3.1.1. It is called from the
// session's reader goroutine only (it uses s.pub).
func (g *Gateway) decidePublish(ctx context.Context, s *session, topic string, payload []byte, props *packets.Properties) policy.Decision {
	start := time.Now()
	snap := g.o.Engine.Snapshot()
	if s.pub == nil {
		s.pub = new(publishScratch)
	}
	rt, params := s.pub.route(snap, topic)
	if rt == nil {
		if g.o.Usage != nil {
			g.o.Usage.Shadow("mqtt", "publish", topic, s.principal.Subject, start)
		}
		d := policy.Decision{Status: policy.NotFound, Reason: policy.ReasonNoRoute, Detail: "no published API declares publish " + topic}
		g.record(&d, s, codeNotAuthorized.Code, start, nil)
		return d
	}
	req := &s.pub.req
	*req = policy.Request{Protocol: policy.MQTT, Action: "publish", Path: topic, Route: rt, Params: params,
		Principal: s.principal, Body: payload, ClientIP: s.clientIP, Now: start}
	if props != nil {
		req.ContentType = props.ContentType
		req.Header = userHeader(props.User)
	}
	d := g.o.Engine.Decide(ctx, snap, req)
	*req = policy.Request{} // do not pin the payload
	code := byte(0)
	if !d.Allowed() {
		code = codeFor(d.Status).Code
	} else if g.o.Forward != nil && len(rt.Upstream) > 0 {
		g.o.Forward(rt, topic, s.principal.Subject, payload, start)
	}
	var m *telemetry.RouteMetrics
	if g.o.Metrics != nil && s.pub.rt == rt && d.Route == rt {
		if s.pub.metrics == nil {
			s.pub.metrics = g.o.Metrics.Route("mqtt", rt.API, rt.Version, rt.OperationID)
		}
		m = s.pub.metrics
	}
	g.record(&d, s, code, start, m)
	return d
}

// userHeader offers MQTT 5 user properties as an HTTP-style header, nil
// when there are none (the common case allocates nothing).
func userHeader(up []packets.UserProperty) http.Header {
	if len(up) == 0 {
		return nil
	}
	h := make(http.Header, len(up))
	for _, u := range up {
		h.Add(u.Key, u.Val)
	}
	return h
}

// decideFilter decides one SUBSCRIBE filter and returns 0 when it is
// allowed, or the MQTT 5 SUBACK reason code. A filter without wildcards is
// decided like a request on its route. A wildcard filter is allowed only
// when every declared "subscribe" route it overlaps allows the principal,
// with wildcard-covered parameters standing for "any value"
// (policy.MQTTWildcardParam); a filter overlapping no route is denied.
//
// Shared subscriptions ($share/{group}/{filter}) are decided on their
// filter, and the group must belong to the principal under the client id
// rule, so one identity cannot join another's group and siphon its
// messages. metered=false is the re-check mochi makes after OnSubscribe: it
// spends no rate-limit tokens and records nothing.
func (g *Gateway) decideFilter(ctx context.Context, s *session, filter string, metered bool) packets.Code {
	start := time.Now()
	group, inner, shared, ok := splitShared(filter)
	if !ok || !validFilter(inner) {
		return codeFilterInvalid
	}
	if shared && !clientIDBound(group, s.principal) {
		if metered {
			g.denial("shared-group")
		}
		return codeSharedNotForYou
	}
	snap := g.o.Engine.Snapshot()
	var pbuf [policy.MaxParams]policy.Param
	var routes []*policy.Route
	if strings.ContainsAny(inner, "+#") {
		routes = snap.MQTTRoutesOverlapping("subscribe", inner)
	} else if rt, _ := snap.MatchMQTT("subscribe", inner, pbuf[:0]); rt != nil {
		routes = []*policy.Route{rt}
	}
	if len(routes) == 0 {
		if metered {
			if g.o.Usage != nil {
				g.o.Usage.Shadow("mqtt", "subscribe", filter, s.principal.Subject, start)
			}
			d := policy.Decision{Status: policy.NotFound, Reason: policy.ReasonNoRoute}
			g.record(&d, s, codeNotAuthorized.Code, start, nil)
		}
		return codeNotAuthorized
	}
	for _, rt := range routes {
		req := policy.Request{Protocol: policy.MQTT, Action: "subscribe", Path: inner, Route: rt,
			Params: rt.MQTTFilterParams(inner, pbuf[:0]), Principal: s.principal, ClientIP: s.clientIP, Now: start}
		var d policy.Decision
		if metered {
			d = g.o.Engine.Decide(ctx, snap, &req)
		} else {
			d = g.o.Engine.AuthorizeDelivery(ctx, snap, &req)
		}
		code := byte(0)
		if !d.Allowed() {
			code = codeFor(d.Status).Code
		}
		if metered {
			g.record(&d, s, code, start, nil)
		}
		if code != 0 {
			return codeFor(d.Status)
		}
	}
	return packets.CodeSuccess
}

// mayReceive reports whether the session may receive a message published
// on the concrete topic: the topic's "subscribe" route must allow it now.
// It runs for every delivered message, so answers are cached per session
// for the snapshot they were made with; a new snapshot empties the cache.
func (g *Gateway) mayReceive(s *session, topic string) bool {
	snap := g.o.Engine.Snapshot()
	s.mu.Lock()
	if s.snap != snap {
		s.snap = snap
		clear(s.recv)
	}
	ok, hit := s.recv[topic]
	s.mu.Unlock()
	if hit {
		return ok
	}
	var pbuf [policy.MaxParams]policy.Param
	rt, params := snap.MatchMQTT("subscribe", topic, pbuf[:0])
	if rt != nil {
		req := policy.Request{Protocol: policy.MQTT, Action: "subscribe", Path: topic, Route: rt, Params: params,
			Principal: s.principal, ClientIP: s.clientIP, Now: time.Now()}
		d := g.o.Engine.AuthorizeDelivery(context.Background(), snap, &req)
		ok = d.Allowed()
	}
	if len(topic) <= maxCachedTopic {
		s.mu.Lock()
		if s.snap == snap {
			if s.recv == nil || len(s.recv) >= maxRecvCache {
				s.recv = make(map[string]bool, 8)
			}
			s.recv[topic] = ok
		}
		s.mu.Unlock()
	}
	return ok
}

// deprecationProps returns the MQTT 5 user properties announcing that the
// "subscribe" channel of topic is deprecated (the same values as the HTTP
// Deprecation, Sunset and Link headers), or nil.
func (g *Gateway) deprecationProps(topic string) []packets.UserProperty {
	var pbuf [policy.MaxParams]policy.Param
	rt, _ := g.o.Engine.Snapshot().MatchMQTT("subscribe", topic, pbuf[:0])
	if rt == nil || rt.DeprecationHeader == "" {
		return nil
	}
	up := []packets.UserProperty{{Key: "deprecation", Val: rt.DeprecationHeader}}
	if rt.SunsetHeader != "" {
		up = append(up, packets.UserProperty{Key: "sunset", Val: rt.SunsetHeader})
	}
	if rt.Successor != "" {
		up = append(up, packets.UserProperty{Key: "successor", Val: rt.Successor})
	}
	return up
}

// withDeprecation returns user with the deprecation properties appended,
// in a new slice: the packet being delivered shares its slice with every
// other subscriber's copy.
func withDeprecation(user, dep []packets.UserProperty) []packets.UserProperty {
	out := make([]packets.UserProperty, 0, len(user)+len(dep))
	out = append(out, user...)
	return append(out, dep...)
}

// stripReserved removes user properties a publisher must not set: the
// deprecation signals are the gateway's to give, and a device forging them
// would mislead subscribers. The common case (none present) allocates
// nothing.
func stripReserved(user []packets.UserProperty) []packets.UserProperty {
	found := false
	for _, u := range user {
		if reservedKey(u.Key) {
			found = true
			break
		}
	}
	if !found {
		return user
	}
	out := make([]packets.UserProperty, 0, len(user))
	for _, u := range user {
		if !reservedKey(u.Key) {
			out = append(out, u)
		}
	}
	return out
}

func reservedKey(k string) bool {
	return strings.EqualFold(k, "deprecation") || strings.EqualFold(k, "sunset") || strings.EqualFold(k, "successor")
}

// record feeds metrics and usage with one decision. The metrics "status"
// label of MQTT is the reason code (0 for success). m, when not nil, is
// the cached metrics handle of d.Route.
func (g *Gateway) record(d *policy.Decision, s *session, code byte, start time.Time, m *telemetry.RouteMetrics) {
	rt := d.Route
	if g.o.Metrics != nil {
		if m != nil {
			m.Observe(int(code), time.Since(start))
		} else if rt != nil {
			g.o.Metrics.Request("mqtt", rt.API, rt.Version, rt.OperationID, int(code), time.Since(start))
		} else {
			g.o.Metrics.Request("mqtt", "", "", "", int(code), time.Since(start))
		}
	}
	if g.o.Devices != nil {
		g.o.Devices.Seen(s.principal, "", start)
	}
	if d.Allowed() {
		if g.o.Usage != nil && rt != nil {
			g.o.Usage.Use(rt.Tenant, rt.VersionID, s.principal.Subject, s.principal.Model, s.principal.Firmware, start)
		}
		return
	}
	g.denial(d.Reason)
	if d.Status == policy.Gone {
		// A device still using a retired channel is worth an operator's
		// attention (it is about to fail for good), once a minute per
		// session: a device retrying must not flood the log.
		if last := s.goneLogged.Load(); start.Unix()-last < 60 || !s.goneLogged.CompareAndSwap(last, start.Unix()) {
			return
		}
		g.log.Info("mqtt request on a retired channel", "client_id", s.clientID, "subject", s.principal.Subject,
			"api", rt.API, "version", rt.Version, "operation", rt.OperationID)
		return
	}
	g.log.Debug("mqtt request denied", "client_id", s.clientID, "subject", s.principal.Subject, "reason", d.Reason, "detail", d.Detail)
}

func (g *Gateway) denial(reason string) {
	if g.o.Metrics != nil {
		g.o.Metrics.Denial("mqtt", reason)
	}
}
