package spec

import (
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/fleetgate/fleetgate/internal/model"
)

// asyncapiChecker checks the parts of an AsyncAPI document that Bindings and
// the MQTT data plane rely on. As for OpenAPI, the memo sets make shared
// objects cost once and reference cycles terminate.
type asyncapiChecker struct {
	r      *resolver
	chDone map[*yaml.Node]bool // channels checked
	opDone map[*yaml.Node]bool // operations checked; apart, so that an operation $ref to a channel is still checked as an operation
	opIDs  map[string]*yaml.Node
	chans  *yaml.Node // the /channels mapping, nil when absent
}

// checkAsyncAPI checks servers, channels and (3.0) operations.
func checkAsyncAPI(root *yaml.Node, v2 bool, r *resolver) *Error {
	if sk, servers := lookup(root, "servers"); sk != nil && !isMapping(servers) {
		return errAt("/servers", nodeOr(servers, sk), "servers must be a mapping")
	}
	ck, channels := lookup(root, "channels")
	if ck != nil && !isMapping(channels) {
		return errAt("/channels", nodeOr(channels, ck), "channels must be a mapping")
	}
	c := &asyncapiChecker{r: r, chDone: map[*yaml.Node]bool{}, opDone: map[*yaml.Node]bool{}, opIDs: map[string]*yaml.Node{}, chans: channels}
	n := 0 // channel actions, for maxOperations
	for _, en := range entries(channels) {
		ptr := child("/channels", en.key)
		if !v2 {
			if e := c.channel3(en.v, ptr, 0); e != nil {
				return e
			}
			continue
		}
		// In AsyncAPI 2 the key is the channel's address (the MQTT topic).
		if en.key == "" {
			return errAt(ptr, en.k, "channel name must not be empty")
		}
		if p := templateProblem(en.key); p != "" {
			return errAt(ptr, en.k, "channel %q: %s", clip(en.key), p)
		}
		if e := c.channel2(en.v, ptr, 0); e != nil {
			return e
		}
		channelActions(r, en.v, func(string, *yaml.Node) { n++ })
		if n > maxOperations {
			return errAt(ptr, en.k, "document describes more than %d operations", maxOperations)
		}
	}
	if v2 {
		return nil
	}
	ok, ops := lookup(root, "operations")
	if ok != nil && !isMapping(ops) {
		return errAt("/operations", nodeOr(ops, ok), "operations must be a mapping")
	}
	for i, en := range entries(ops) {
		ptr := child("/operations", en.key)
		if e := c.operation3(en.v, ptr, 0); e != nil {
			return e
		}
		if i >= maxOperations {
			return errAt(ptr, en.k, "document describes more than %d operations", maxOperations)
		}
	}
	return nil
}

// follow checks the $ref of a Reference Object n (at ptr), if it has one,
// and returns its target and the target's pointer. A target that is not a
// mapping is an error; the caller checks the target further.
func (c *asyncapiChecker) follow(n *yaml.Node, ptr string, hops int, kind string) (*yaml.Node, string, *Error) {
	rk, rv := lookup(n, "$ref")
	if rk == nil {
		return nil, "", nil
	}
	target, tptr := c.r.ref(refString(rv))
	if !isMapping(target) {
		return nil, "", errAt(child(ptr, "$ref"), nodeOr(rv, rk), "this $ref must be a JSON pointer (\"#/...\") to %s", kind)
	}
	if hops >= maxRefHops {
		return nil, "", errAt(child(ptr, "$ref"), nodeOr(rv, rk), "more than %d chained $refs", maxRefHops)
	}
	return target, tptr, nil
}

// channel2 checks an AsyncAPI 2 Channel Item: its publish and subscribe
// operations must be mappings with unique string operationIds.
func (c *asyncapiChecker) channel2(ch *yaml.Node, ptr string, hops int) *Error {
	ch = deref(ch)
	if ch == nil || ch.Kind != yaml.MappingNode {
		return errAt(ptr, ch, "channel must be a mapping")
	}
	if c.chDone[ch] {
		return nil
	}
	c.chDone[ch] = true
	for _, a := range []string{"publish", "subscribe"} {
		k, op := lookup(ch, a)
		if k == nil {
			continue
		}
		if !isMapping(op) {
			return errAt(child(ptr, a), nodeOr(op, k), "%s operation must be a mapping", a)
		}
		if e := checkOperationID(c.opIDs, op, child(ptr, a), "operationId"); e != nil {
			return e
		}
	}
	target, tptr, e := c.follow(ch, ptr, hops, "a channel")
	if e != nil || target == nil {
		return e
	}
	return c.channel2(target, tptr, hops+1)
}

// channel3 checks an AsyncAPI 3 Channel: address, when given, is a string
// template or null (null means the address is not known statically).
func (c *asyncapiChecker) channel3(ch *yaml.Node, ptr string, hops int) *Error {
	ch = deref(ch)
	if ch == nil || ch.Kind != yaml.MappingNode {
		return errAt(ptr, ch, "channel must be a mapping")
	}
	if c.chDone[ch] {
		return nil
	}
	c.chDone[ch] = true
	target, tptr, e := c.follow(ch, ptr, hops, "a channel")
	if e != nil {
		return e
	}
	if target != nil {
		return c.channel3(target, tptr, hops+1)
	}
	ak, av := lookup(ch, "address")
	if ak == nil || isNull(av) {
		return nil
	}
	addr, ok := stringValue(av)
	if !ok {
		return errAt(child(ptr, "address"), nodeOr(av, ak), "address must be a string or null")
	}
	if p := templateProblem(addr); p != "" {
		return errAt(child(ptr, "address"), av, "address %q: %s", clip(addr), p)
	}
	return nil
}

// operation3 checks an AsyncAPI 3 Operation: action send or receive, and a
// channel that is a reference to an entry of /channels (the specification
// requires that form, and it is what ties the operation to a topic).
func (c *asyncapiChecker) operation3(op *yaml.Node, ptr string, hops int) *Error {
	op = deref(op)
	if op == nil || op.Kind != yaml.MappingNode {
		return errAt(ptr, op, "operation must be a mapping")
	}
	if c.opDone[op] {
		return nil
	}
	c.opDone[op] = true
	target, tptr, e := c.follow(op, ptr, hops, "an operation")
	if e != nil {
		return e
	}
	if target != nil {
		return c.operation3(target, tptr, hops+1)
	}
	ak, av := lookup(op, "action")
	if ak == nil {
		return errAt(ptr, op, "\"action\" is required")
	}
	if a, _ := stringValue(av); a != "send" && a != "receive" {
		return errAt(child(ptr, "action"), nodeOr(av, ak), "action must be \"send\" or \"receive\"")
	}
	chk, ch := lookup(op, "channel")
	if chk == nil {
		return errAt(ptr, op, "\"channel\" is required")
	}
	cptr := child(ptr, "channel")
	rk, rv := lookup(ch, "$ref")
	if rk == nil {
		return errAt(cptr, nodeOr(ch, chk), "channel must be a reference to an entry of /channels, e.g. {$ref: '#/channels/telemetry'}")
	}
	if _, ok := channelKey(c.r, c.chans, refString(rv)); !ok {
		return errAt(child(cptr, "$ref"), nodeOr(rv, rk), "channel $ref must point to an entry of /channels, e.g. \"#/channels/telemetry\"")
	}
	return nil
}

// channelKey returns the key of the /channels entry that ref ("#/channels/x")
// names; ok is false if ref names anything else.
func channelKey(r *resolver, channels *yaml.Node, ref string) (string, bool) {
	f, ok := fragment(ref)
	if !ok || !strings.HasPrefix(f, "/channels/") {
		return "", false
	}
	tok := f[len("/channels/"):]
	if strings.Contains(tok, "/") {
		return "", false
	}
	key, ok := unescapeToken(tok)
	if !ok {
		return "", false
	}
	if r.key(channels, key) == nil {
		return "", false
	}
	return key, true
}

// isNull reports whether n is a null scalar (`null`, `~` or empty).
func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// channelActions calls fn with the publish and subscribe operations of an
// AsyncAPI 2 channel item, following the item's $ref chain; the item's own
// operations win over those of the item it refers to.
func channelActions(r *resolver, ch *yaml.Node, fn func(action string, op *yaml.Node)) {
	var pub, sub bool
	followRefs(r, ch, func(n *yaml.Node) {
		if op := r.key(n, "publish"); !pub && isMapping(op) {
			pub = true
			fn("publish", op)
		}
		if op := r.key(n, "subscribe"); !sub && isMapping(op) {
			sub = true
			fn("subscribe", op)
		}
	})
}

// asyncapiBindings extracts the MQTT binding of an AsyncAPI document.
func asyncapiBindings(root *yaml.Node, v2 bool) model.Bindings {
	r := newResolver(root)
	_, channels := lookup(root, "channels")
	var out []model.MQTTChannel
	if v2 {
		for _, en := range entries(channels) {
			channelActions(r, en.v, func(action string, op *yaml.Node) {
				id, _ := stringValue(r.key(op, "operationId"))
				out = append(out, model.MQTTChannel{Topic: en.key, Action: action, OperationID: id})
			})
		}
	} else {
		_, ops := lookup(root, "operations")
		for _, en := range entries(ops) {
			var action, ref string
			followRefs(r, en.v, func(op *yaml.Node) {
				if action == "" {
					action, _ = stringValue(r.key(op, "action"))
				}
				if ref == "" {
					ref, _ = stringValue(r.key(r.key(op, "channel"), "$ref"))
				}
			})
			key, ok := channelKey(r, channels, ref)
			if !ok {
				continue
			}
			var act string
			switch action {
			case "send": // the application (device) sends: it publishes
				act = "publish"
			case "receive":
				act = "subscribe"
			default:
				continue
			}
			ch := r.key(channels, key)
			out = append(out, model.MQTTChannel{Topic: channelAddress(r, ch, key), Action: act, OperationID: en.key})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.Action != b.Action {
			return a.Action < b.Action
		}
		return a.OperationID < b.OperationID
	})
	return model.Bindings{MQTT: &model.MQTTBinding{Channels: out}}
}

// channelAddress returns an AsyncAPI 3 channel's address, following a
// channel $ref; the channel key stands in when the address is absent or
// null.
func channelAddress(r *resolver, ch *yaml.Node, key string) string {
	addr, found := "", false
	followRefs(r, ch, func(n *yaml.Node) {
		if found {
			return
		}
		if v := r.key(n, "address"); v != nil {
			found = true
			addr, _ = stringValue(v)
		}
	})
	if addr == "" {
		return key
	}
	return addr
}
