package diff

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// channel is an AsyncAPI channel, keyed by its address with parameter
// names erased ("fleet/{}/telemetry"): the topic is what devices use.
// AsyncAPI 2 and 3 are brought to one shape, so that a 2.x version can be
// compared with its 3.0 successor: a 3.0 send is a 2.x publish (the device
// sends), a receive is a subscribe.
type channel struct {
	key, label string
	loc        loc
	actions    map[string]*asyncOp // "publish", "subscribe"
}

// asyncOp is what devices do on a channel, with the messages involved.
type asyncOp struct {
	loc     loc
	msgs    []message
	keys    map[string]bool     // of msgs
	sources map[*yaml.Node]bool // message lists merged in
}

func newAsyncOp(at loc) *asyncOp {
	return &asyncOp{loc: at, keys: map[string]bool{}, sources: map[*yaml.Node]bool{}}
}

// message is a Message object, keyed by messageId, name, or its key in a
// channel's messages.
type message struct {
	key string
	loc loc
}

// asyncSide is one document's channels, in document order.
type asyncSide struct {
	chans map[string]*channel
	order []string
}

func (s *asyncSide) channel(address string, at loc) *channel {
	key := routeKey("", address)[1:]
	if c, ok := s.chans[key]; ok {
		return c
	}
	c := &channel{key: key, label: address, loc: at, actions: map[string]*asyncOp{}}
	s.chans[key] = c
	s.order = append(s.order, key)
	return c
}

// messageKey names a message for matching across versions.
func messageKey(t *tree, m loc, fallback string) string {
	for _, f := range [...]string{"messageId", "name"} {
		if v, ok := str(t.Val(m.Node, f)); ok && v != "" {
			return v
		}
	}
	return fallback
}

// collectAsync brings a document's channels to the common shape.
func (d *differ) collectAsync(t *tree) *asyncSide {
	s := &asyncSide{chans: map[string]*channel{}}
	root := loc{Node: t.Root}
	names, chans := fields(t.At(root, "channels"))
	if strings.HasPrefix(versionOf(t), "2.") {
		// An operation shared by many channels (through $refs) is read once.
		memo := map[*yaml.Node]*asyncOp{}
		for i, name := range names {
			c := s.channel(name, chans[i])
			var chain []*yaml.Node
			for ch := chans[i]; isMap(ch.Node) && !slices.Contains(chain, ch.Node) && len(chain) <= maxRefHops && d.step(); {
				chain = append(chain, ch.Node)
				for _, a := range [...]string{"publish", "subscribe"} {
					op := t.At(ch, a)
					if _, done := c.actions[a]; done || !isMap(op.Node) {
						continue
					}
					ao := memo[deref(op.Node)]
					if ao == nil {
						ao = newAsyncOp(op)
						msg := t.Follow(t.At(op, "message"))
						if alts := t.At(msg, "oneOf"); isSeq(alts.Node) {
							for j, m := range elems(alts) {
								m = t.Follow(m)
								ao.add(message{key: messageKey(t, m, "#"+strconv.Itoa(j)), loc: m})
							}
						} else if msg.Valid() {
							ao.add(message{key: messageKey(t, msg, "#0"), loc: msg})
						}
						memo[deref(op.Node)] = ao
					}
					c.actions[a] = ao
				}
				ref, ok := str(t.Val(ch.Node, "$ref"))
				if !ok {
					break
				}
				ch = t.Resolve(ref)
			}
		}
		return s
	}
	byKey := map[string]*channel{}
	for i, name := range names {
		ch := t.Follow(chans[i])
		addr, ok := str(t.Val(ch.Node, "address"))
		if !ok || addr == "" {
			addr = name // null address: the key stands in, as in spec.Bindings
		}
		byKey[name] = s.channel(addr, chans[i])
	}
	opNames, ops := fields(t.At(root, "operations"))
	for i := range opNames {
		if !d.step() {
			break
		}
		op := t.Follow(ops[i])
		action, _ := str(t.Val(op.Node, "action"))
		a := map[string]string{"send": "publish", "receive": "subscribe"}[action]
		ref, _ := str(t.Val(t.Val(op.Node, "channel"), "$ref"))
		c := byKey[channelName(ref)]
		if a == "" || c == nil {
			continue
		}
		ao := c.actions[a]
		if ao == nil {
			ao = newAsyncOp(op)
			c.actions[a] = ao
		}
		if ms := t.At(op, "messages"); isSeq(ms.Node) {
			if !ao.merge(ms.Node) {
				continue
			}
			for _, m := range elems(ms) {
				r, _ := str(t.Val(m.Node, "$ref"))
				m = t.Follow(m)
				ao.add(message{key: messageKey(t, m, lastToken(r)), loc: m})
			}
			continue
		}
		cms := t.At(t.Follow(t.Resolve(ref)), "messages")
		if !ao.merge(cms.Node) {
			continue
		}
		keys, ms := fields(cms)
		for j, m := range ms {
			m = t.Follow(m)
			ao.add(message{key: messageKey(t, m, keys[j]), loc: m})
		}
	}
	return s
}

// add appends m unless a message with its key is there already (two
// operations with one action on one channel share their messages).
func (a *asyncOp) add(m message) {
	if !a.keys[m.key] {
		a.keys[m.key] = true
		a.msgs = append(a.msgs, m)
	}
}

// merge reports whether the message list src is merged into a for the
// first time; a channel shared by many operations is merged once.
func (a *asyncOp) merge(src *yaml.Node) bool {
	src = deref(src)
	if a.sources[src] {
		return false
	}
	a.sources[src] = true
	return true
}

// versionOf returns the asyncapi field of a document.
func versionOf(t *tree) string {
	v, _ := str(t.Val(t.Root, "asyncapi"))
	return v
}

// channelName returns the key of /channels that "#/channels/x" names.
func channelName(ref string) string {
	if !strings.HasPrefix(ref, "#/channels/") {
		return ""
	}
	return unescape(ref[len("#/channels/"):])
}

// lastToken returns the last token of a $ref, unescaped.
func lastToken(ref string) string {
	return unescape(ref[strings.LastIndexByte(ref, '/')+1:])
}

func unescape(tok string) string {
	if u, err := url.PathUnescape(tok); err == nil {
		tok = u
	}
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
}

// asyncapi compares two AsyncAPI documents.
func (d *differ) asyncapi() {
	o, n := d.collectAsync(d.old), d.collectAsync(d.new)
	for _, k := range o.order {
		if _, ok := n.chans[k]; !ok {
			c := o.chans[k]
			d.add("channel-removed", true, c.loc.Ptr, "channel %s was removed; devices still use it", clip(c.label))
		}
	}
	for _, k := range n.order {
		nc := n.chans[k]
		oc, ok := o.chans[k]
		if !ok {
			d.add("channel-added", false, nc.loc.Ptr, "channel %s was added", clip(nc.label))
			continue
		}
		for _, a := range [...]string{"publish", "subscribe"} {
			oa, na := oc.actions[a], nc.actions[a]
			label := a + " " + clip(nc.label)
			switch {
			case oa == nil && na == nil:
			case na == nil:
				d.add("operation-removed", true, oa.loc.Ptr, "%s was removed; devices that %s there are refused", label, a)
			case oa == nil:
				d.add("operation-added", false, na.loc.Ptr, "%s was added", label)
			default:
				d.messages(oa, na, a, label)
			}
		}
	}
}

// messages compares the messages of one action. Devices publish: a
// message they may no longer send breaks them. Devices subscribe: a
// message they have never seen may break them.
func (d *differ) messages(o, n *asyncOp, action, label string) {
	dir := request
	if action == "subscribe" {
		dir = response
	}
	if !d.once(o.loc.Node, n.loc.Node, dir) { // operations shared by channels
		return
	}
	if len(o.msgs) == 1 && len(n.msgs) == 1 {
		d.message(o.msgs[0], n.msgs[0], dir, label)
		return
	}
	byKey := make(map[string]message, len(n.msgs))
	for _, m := range n.msgs {
		byKey[m.key] = m
	}
	for _, om := range o.msgs {
		nm, ok := byKey[om.key]
		if !ok {
			d.add("message-removed", dir == request, om.loc.Ptr, "%s: message %s was removed", label, clip(om.key))
			continue
		}
		d.message(om, nm, dir, label)
	}
	for _, nm := range n.msgs {
		if !o.keys[nm.key] {
			d.add("message-added", dir == response, nm.loc.Ptr, "%s: message %s was added", label, clip(nm.key))
		}
	}
}

// message compares the payload and headers of two versions of a message.
func (d *differ) message(o, n message, dir direction, label string) {
	for _, f := range [...]string{"payload", "headers"} {
		d.schema(unwrap(d.old, d.old.At(o.loc, f)), unwrap(d.new, d.new.At(n.loc, f)), dir, label+" "+f, 0)
	}
}

// unwrap returns the schema of an AsyncAPI 3 Multi Format Schema Object
// ({schemaFormat, schema}); other schemas as they are.
func unwrap(t *tree, s loc) loc {
	f := t.Follow(s)
	if k, _ := t.Get(f.Node, "schemaFormat"); k != nil {
		return t.At(f, "schema")
	}
	return s
}
