package policy

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"time"
)

// MQTT topic filters against channel templates.
//
// A SUBSCRIBE names a topic filter, which may contain the wildcards '+'
// (exactly one level, [MQTT-4.7.1-2]) and '#' (this level and every level
// below, last in the filter, [MQTT-4.7.1-1]; MQTT 5.0 numbering). Channels are declared as
// templates ("fleet/{deviceId}/commands"). The MQTT adapter lets a filter
// through only when every declared "subscribe" route it could receive
// messages from allows the caller, so it needs the routes a filter
// overlaps and, per route, the parameter values the filter pins down.

// MQTTWildcardParam is the value given to a template parameter that a
// wildcard of the filter leaves open. No principal is bound to it and no
// ownership names it, so an identity binding on that parameter denies the
// filter: a device may subscribe to its own "fleet/dev1/commands" but not to
// "fleet/+/commands". A rule that does not look at the parameter is
// unaffected. Deliveries are authorized again per concrete topic, so a rule
// that misjudges the placeholder cannot leak a message.
const MQTTWildcardParam = "+"

// MQTTRoutesOverlapping returns the routes of action ("subscribe" or
// "publish") whose template matches at least one topic name that filter
// also matches. A filter without wildcards overlaps at most the route
// MatchMQTT finds. Filters starting with a wildcard do not reach templates
// whose first level is a literal starting with '$' [MQTT-4.7.2-1].
//
// The walk visits each router node at most once per filter level, so its
// cost is bounded by the size of the snapshot's MQTT router.
func (s *Snapshot) MQTTRoutesOverlapping(action, filter string) []*Route {
	root := s.mqtt.roots[action]
	if root == nil || filter == "" || len(filter) > 65535 {
		return nil
	}
	segs := strings.Split(filter, "/")
	var out []*Route
	root.overlap(segs, 0, &out)
	return out
}

func (n *node) overlap(segs []string, i int, out *[]*Route) {
	if i == len(segs) {
		if n.route != nil {
			*out = append(*out, n.route)
		}
		return
	}
	switch seg := segs[i]; seg {
	case "#":
		// '#' also matches the parent level: "a/#" matches "a".
		n.collect(out, i == 0)
	case "+":
		for lit, c := range n.literal {
			if i == 0 && strings.HasPrefix(lit, "$") {
				continue
			}
			c.overlap(segs, i+1, out)
		}
		if n.param != nil {
			n.param.overlap(segs, i+1, out)
		}
	default:
		if c := n.literal[seg]; c != nil {
			c.overlap(segs, i+1, out)
		}
		// A parameter matches any non-empty level without wildcards, as in
		// router.match.
		if n.param != nil && seg != "" && !strings.ContainsAny(seg, "+#") {
			n.param.overlap(segs, i+1, out)
		}
	}
}

// collect appends every route at or below n. At the root, literal levels
// starting with '$' are skipped [MQTT-4.7.2-1].
func (n *node) collect(out *[]*Route, root bool) {
	if n.route != nil {
		*out = append(*out, n.route)
	}
	for lit, c := range n.literal {
		if root && strings.HasPrefix(lit, "$") {
			continue
		}
		c.collect(out, false)
	}
	if n.param != nil {
		n.param.collect(out, false)
	}
}

// MQTTFilterParams returns the parameters of rt's template as filter pins
// them down, appended to params: the filter's level where it has one, and
// MQTTWildcardParam where a '+' or '#' covers the parameter. rt must be one
// of the routes MQTTRoutesOverlapping returned for filter.
func (rt *Route) MQTTFilterParams(filter string, params []Param) []Param {
	fsegs := strings.Split(filter, "/")
	tsegs := strings.Split(rt.Template, "/")
	hash := false
	for i, t := range tsegs {
		name, ok := paramName(t)
		if !ok {
			if i < len(fsegs) && fsegs[i] == "#" {
				hash = true
			}
			continue
		}
		if len(params) >= MaxParams {
			break
		}
		v := MQTTWildcardParam
		if !hash && i < len(fsegs) {
			switch fsegs[i] {
			case "#":
				hash = true
			case "+":
			default:
				v = fsegs[i]
			}
		}
		params = append(params, Param{Name: name, Value: v})
	}
	return params
}

// AuthorizeDelivery decides whether r.Principal may receive a message on
// the concrete topic r.Path, whose "subscribe" route is r.Route. It runs
// every step of Decide except rate limiting: a delivery is not a request of
// the subscriber and must not spend its tokens (its SUBSCRIBE did), and
// payloads are validated once, when they are published. Adapters call it
// per delivered message, after the subscription itself was decided.
func (e *Engine) AuthorizeDelivery(ctx context.Context, s *Snapshot, r *Request) Decision {
	// An engine without a counter skips the rate-limit step.
	unmetered := Engine{}
	return unmetered.Decide(ctx, s, r)
}

// SessionValid reports whether a long-lived session (MQTT, CoAP/DTLS) that
// authenticated as p is still backed by its credential in snapshot s. cert
// is the client certificate the session authenticated with, nil for an API
// key. With a certificate the check is exact: a device or application that
// still has another live certificate does not keep a session whose own
// certificate was revoked, unpinned or has expired.
func (s *Snapshot) SessionValid(p *Principal, cert *x509.Certificate, now time.Time) bool {
	if p == nil {
		return false
	}
	if cert != nil {
		if !now.Before(cert.NotAfter) {
			return false
		}
		switch {
		case p.Kind == "device":
			return s.devices.Valid(p, cert, now)
		case p.Credential == "certificate":
			sum := sha256.Sum256(cert.Raw)
			pp := s.pins[hex.EncodeToString(sum[:])]
			return pp != nil && pp.Tenant == p.Tenant && pp.ID == p.ID
		}
	}
	return s.PrincipalValid(p, now)
}
