package shape

import (
	"net/url"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/fleetgate/fleetgate/internal/spec/yamlx"
)

// async2 lists AsyncAPI 2 channel operations: publish (the device sends)
// and subscribe, each with the payloads and headers of its messages.
func (w *walker) async2() []Op {
	var out []Op
	names, chans := yamlx.Fields(w.t.At(yamlx.Loc{Node: w.t.Root}, "channels"))
	for i, name := range names {
		ch := w.t.Follow(chans[i])
		for _, action := range [...]string{"publish", "subscribe"} {
			op := w.t.At(ch, action)
			if !yamlx.IsMap(op.Node) || !w.step() {
				continue
			}
			id, _ := yamlx.Str(w.t.Val(op.Node, "operationId"))
			msg := w.t.Follow(w.t.At(op, "message"))
			var msgs []yamlx.Loc
			if alts := w.t.At(msg, "oneOf"); alts.Valid() {
				for _, m := range yamlx.Elems(alts) {
					msgs = append(msgs, w.t.Follow(m))
				}
			} else if msg.Valid() {
				msgs = append(msgs, msg)
			}
			out = append(out, w.channelOp(name, action, id, msgs))
		}
	}
	return out
}

// async3 lists AsyncAPI 3 operations: send is publish, receive is
// subscribe (the device's point of view, as in spec.Bindings). An
// operation without its own messages carries its channel's.
func (w *walker) async3() []Op {
	var out []Op
	root := yamlx.Loc{Node: w.t.Root}
	opNames, ops := yamlx.Fields(w.t.At(root, "operations"))
	for i, name := range opNames {
		if !w.step() {
			break
		}
		op := w.t.Follow(ops[i])
		action, _ := yamlx.Str(w.t.Val(op.Node, "action"))
		a := map[string]string{"send": "publish", "receive": "subscribe"}[action]
		ref, _ := yamlx.Str(w.t.Val(w.t.Val(op.Node, "channel"), "$ref"))
		ch := w.t.Follow(w.t.Resolve(ref))
		if a == "" || !ch.Valid() {
			continue
		}
		addr, ok := yamlx.Str(w.t.Val(ch.Node, "address"))
		if !ok || addr == "" {
			addr = channelKey(ref)
		}
		var msgs []yamlx.Loc
		if ms := w.t.At(op, "messages"); ms.Valid() {
			for _, m := range yamlx.Elems(ms) {
				msgs = append(msgs, w.t.Follow(m))
			}
		} else {
			_, ms := yamlx.Fields(w.t.At(ch, "messages"))
			for _, m := range ms {
				msgs = append(msgs, w.t.Follow(m))
			}
		}
		out = append(out, w.channelOp(addr, a, name, msgs))
	}
	return out
}

// channelOp fingerprints a channel operation: action, number of channel
// parameters, and its messages' payloads and headers (in any order).
func (w *walker) channelOp(channel, action, id string, msgs []yamlx.Loc) Op {
	o := Op{Protocol: "mqtt", Action: action, Path: channel, OperationID: id}
	var ms []string
	for _, m := range msgs {
		var parts []string
		for _, f := range [...]string{"payload", "headers"} {
			if s := w.t.At(m, f); s.Valid() {
				parts = append(parts, f+"="+w.canon(s.Node, 0, []*yaml.Node{}))
			}
		}
		if len(parts) > 0 {
			ms = append(ms, strings.Join(parts, ";"))
		}
	}
	if len(ms) == 0 {
		return o
	}
	sort.Strings(ms)
	ms = slices.Compact(ms)
	o.Fingerprint = digest(append([]string{"mqtt", action, "params=" + itoa(len(yamlx.TemplateNames(channel)))}, ms...))
	return o
}

// channelKey is the key of /channels that "#/channels/x" names.
func channelKey(ref string) string {
	k := strings.TrimPrefix(ref, "#/channels/")
	if u, err := url.PathUnescape(k); err == nil {
		k = u
	}
	return strings.ReplaceAll(strings.ReplaceAll(k, "~1", "/"), "~0", "~")
}
