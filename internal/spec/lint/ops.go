package lint

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/spec"
)

// httpMethods are the operation fields of an OpenAPI Path Item.
var httpMethods = [...]string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// secState is what an operation's effective security requirement says.
type secState int

const (
	secMissing   secState = iota // no requirement at all
	secAnonymous                 // security: [], or a {} requirement among the alternatives
	secSecured                   // every alternative names at least one scheme
)

// security is an operation's effective security requirement.
type security struct {
	state secState
	at    loc  // the security field that decided; invalid when missing
	own   bool // the field is the operation's own, not the document's or a server's
}

// operation is one HTTP operation or AsyncAPI channel action, with what
// the rules need resolved once.
type operation struct {
	name     string // Finding.Operation
	loc      loc    // the Operation object
	item     loc    // OpenAPI: the path item the operation was found in
	template string // path template or channel address
	keys     []string
	params   []loc      // OpenAPI: resolved Parameter objects, path item's merged with the operation's
	body     loc        // OpenAPI: requestBody as written (possibly a $ref)
	messages []loc      // AsyncAPI: resolved Message objects
	msgList  *yaml.Node // the list messages came from, shared by the operations of a channel
	sec      security
}

// linter is the state of one Lint call. It is not shared between calls.
type linter struct {
	t      *tree
	root   loc
	format string
	v2     bool // AsyncAPI 2.x
	pol    *model.Policy
	ops    []*operation

	rule  string    // id of the rule running
	found []Finding // its findings

	reqMemo    map[*yaml.Node]secState
	serverMemo map[*yaml.Node]security
	paramMemo  map[*yaml.Node][]loc
	msgMemo    map[*yaml.Node][]loc
	ruleRe     map[string]*regexp.Regexp // param name -> how rules mention it
}

func newLinter(doc *spec.Document, pol *model.Policy) *linter {
	t := newTree(doc.Root())
	l := &linter{
		t: t, root: loc{Node: t.Root}, format: doc.Format, v2: strings.HasPrefix(doc.Version, "2."), pol: pol,
		reqMemo: map[*yaml.Node]secState{}, serverMemo: map[*yaml.Node]security{}, paramMemo: map[*yaml.Node][]loc{}, msgMemo: map[*yaml.Node][]loc{},
		ruleRe: map[string]*regexp.Regexp{},
	}
	switch {
	case doc.Format == spec.FormatOpenAPI:
		l.collectOpenAPI()
	case l.v2:
		l.collectAsyncAPI2()
	default:
		l.collectAsyncAPI3()
	}
	return l
}

// report records a finding of the running rule at a.
func (l *linter) report(a loc, op, format string, args ...any) {
	line, col := a.Line()
	l.found = append(l.found, Finding{Rule: l.rule, Message: fmt.Sprintf(format, args...), Pointer: a.Ptr, Line: line, Column: col, Operation: op})
}

// clip shortens author-controlled text quoted in messages.
func clip(s string) string {
	if len(s) <= 80 {
		return s
	}
	i := 80
	for i > 0 && !utf8.RuneStart(s[i]) {
		i-- // never cut a character in two
	}
	return s[:i] + "..."
}

// collectOpenAPI lists the operations of /paths (webhooks are calls the
// API makes, not routes the gateway serves). A path item's $ref chain is
// followed; the item's own operations win, as in spec.Bindings. An
// Operation object reached twice (a YAML alias, a shared $ref) is linted
// once, under its first path, which also bounds the work on hostile
// documents.
func (l *linter) collectOpenAPI() {
	base := l.basePath()
	seen := map[*yaml.Node]bool{}
	keys, items := fields(l.t.At(l.root, "paths"))
	for i, key := range keys {
		if !strings.HasPrefix(key, "/") {
			continue
		}
		var done uint8
		var chain []*yaml.Node
		for item := items[i]; item.Valid() && isMap(item.Node) && !slices.Contains(chain, item.Node) && len(chain) <= maxRefHops; {
			chain = append(chain, item.Node)
			for mi, m := range httpMethods {
				op := l.t.At(item, m)
				if done&(1<<mi) != 0 || !isMap(op.Node) {
					continue
				}
				done |= 1 << mi
				if seen[op.Node] {
					continue
				}
				seen[op.Node] = true
				l.ops = append(l.ops, l.httpOperation(key, strings.ToUpper(m), base, item, op))
			}
			ref, ok := str(l.t.Val(item.Node, "$ref"))
			if !ok {
				break
			}
			item = l.t.Resolve(ref)
		}
	}
}

func (l *linter) httpOperation(path, method, base string, item, op loc) *operation {
	o := &operation{loc: op, item: item, template: path, body: l.t.At(op, "requestBody")}
	id, _ := str(l.t.Val(op.Node, "operationId"))
	o.name = id
	if id == "" {
		o.name = method + " " + path
		// The data plane keys the policy of an operation without an
		// operationId by method and full template, base path included.
		o.keys = []string{o.name, method + " " + strings.TrimSuffix(base, "/") + path}
	} else {
		o.keys = []string{id}
	}
	// Operation parameters override path item ones with the same name and
	// location (OpenAPI 3, Path Item Object).
	own := l.params(l.t.At(op, "parameters"))
	o.params = append(o.params, own...)
	if inherited := l.params(l.t.At(item, "parameters")); len(inherited) > 0 {
		ids := make(map[string]bool, len(own))
		for _, p := range own {
			ids[paramID(l.t, p)] = true
		}
		for _, p := range inherited {
			if !ids[paramID(l.t, p)] {
				o.params = append(o.params, p)
			}
		}
	}
	o.sec = l.ownOr(op, func() security { return l.requirement(l.t.At(l.root, "security"), false) })
	return o
}

// params resolves the Parameter objects of a parameters list, once per
// list node.
func (l *linter) params(list loc) []loc {
	if !list.Valid() {
		return nil
	}
	if ps, ok := l.paramMemo[list.Node]; ok {
		return ps
	}
	var out []loc
	for _, p := range elems(list) {
		if p = l.t.Follow(p); isMap(p.Node) {
			out = append(out, p)
		}
	}
	l.paramMemo[list.Node] = out
	return out
}

// paramID identifies a parameter by location and name.
func paramID(t *tree, p loc) string {
	in, _ := str(t.Val(p.Node, "in"))
	name, _ := str(t.Val(p.Node, "name"))
	if in == "header" {
		name = strings.ToLower(name) // header names are case-insensitive (RFC 9110 §5.1)
	}
	return in + "\x00" + name
}

// ownOr returns the security of op's own `security` list if it has one,
// else what inherited returns.
func (l *linter) ownOr(op loc, inherited func() security) security {
	if s := l.t.At(op, "security"); s.Valid() && isSeq(s.Node) {
		return l.requirement(s, true)
	}
	return inherited()
}

// requirement evaluates a security requirement list at s. It mirrors the
// data plane (spec.Document.Security): an empty list, or any alternative
// that names no scheme, lets anyone in.
func (l *linter) requirement(s loc, own bool) security {
	if !s.Valid() || !isSeq(s.Node) {
		return security{state: secMissing}
	}
	st, ok := l.reqMemo[s.Node]
	if !ok {
		st = secSecured
		if len(items(s.Node)) == 0 {
			st = secAnonymous
		}
		for _, r := range items(s.Node) {
			if len(entries(r)) == 0 {
				st = secAnonymous
				break
			}
		}
		l.reqMemo[s.Node] = st
	}
	return security{state: st, at: s, own: own}
}

func isSeq(n *yaml.Node) bool {
	n = deref(n)
	return n != nil && n.Kind == yaml.SequenceNode
}

// basePath is the path of the first server's url, as the data plane uses
// it to key the policy of operations without an operationId.
func (l *linter) basePath() string {
	first := elems(l.t.At(l.root, "servers"))
	if len(first) == 0 {
		return "/"
	}
	u, _ := str(l.t.Val(first[0].Node, "url"))
	pu, err := url.Parse(expandTemplate(u, serverDefaults(l.t, first[0])))
	if err != nil {
		return "/"
	}
	return path.Clean("/" + pu.Path)
}

// serverDefaults returns the defaults of a server's variables.
func serverDefaults(t *tree, s loc) map[string]string {
	out := map[string]string{}
	for _, e := range entries(t.Val(s.Node, "variables")) {
		out[e.Key], _ = str(t.Val(e.V, "default"))
	}
	return out
}

// collectAsyncAPI2 lists the publish and subscribe operations of each
// channel, following the channel's $ref chain as spec.Bindings does.
func (l *linter) collectAsyncAPI2() {
	seen := map[*yaml.Node]bool{}
	keys, chans := fields(l.t.At(l.root, "channels"))
	for i, key := range keys {
		var pub, sub bool
		var chain []*yaml.Node
		for ch := chans[i]; ch.Valid() && isMap(ch.Node) && !slices.Contains(chain, ch.Node) && len(chain) <= maxRefHops; {
			chain = append(chain, ch.Node)
			for _, a := range [...]string{"publish", "subscribe"} {
				op := l.t.At(ch, a)
				if !isMap(op.Node) || (a == "publish" && pub) || (a == "subscribe" && sub) {
					continue
				}
				pub, sub = pub || a == "publish", sub || a == "subscribe"
				if seen[op.Node] {
					continue
				}
				seen[op.Node] = true
				l.ops = append(l.ops, l.channelOperation2(key, a, chans[i], op))
			}
			ref, ok := str(l.t.Val(ch.Node, "$ref"))
			if !ok {
				break
			}
			ch = l.t.Resolve(ref)
		}
	}
}

func (l *linter) channelOperation2(channel, action string, ch, op loc) *operation {
	o := &operation{loc: op, template: channel}
	id, _ := str(l.t.Val(op.Node, "operationId"))
	o.name = id
	if id == "" {
		o.name = action + " " + channel
	}
	o.keys = []string{o.name}
	msg := l.t.Follow(l.t.At(op, "message"))
	if alts := l.t.At(msg, "oneOf"); alts.Valid() {
		for _, m := range elems(alts) {
			o.messages = append(o.messages, l.t.Follow(m))
		}
	} else if msg.Valid() {
		o.messages = append(o.messages, msg)
	}
	// A channel may be limited to some servers (servers: [names]).
	ch = l.t.Follow(ch)
	o.sec = l.ownOr(op, func() security {
		list := l.t.Val(ch.Node, "servers")
		return l.serverSecurity(list, func() []loc {
			all := l.t.At(l.root, "servers")
			if !isSeq(list) {
				_, ss := fields(all)
				return ss
			}
			var out []loc
			for _, n := range items(list) {
				if name, ok := str(n); ok {
					if s := l.t.At(all, name); s.Valid() {
						out = append(out, s)
					}
				}
			}
			return out
		})
	})
	return o
}

// serverSecurity is the security of an operation without its own: every
// server it may be reached on must require some; an anonymous server makes
// the operation anonymous. key memoizes per servers list (nil: all servers).
func (l *linter) serverSecurity(key *yaml.Node, servers func() []loc) security {
	if s, ok := l.serverMemo[key]; ok {
		return s
	}
	sec := security{state: secMissing}
	list := servers()
	for i, s := range list {
		r := l.requirement(l.t.At(l.t.Follow(s), "security"), false)
		if r.state == secMissing {
			sec = r
			break
		}
		if i == 0 || (r.state == secAnonymous && sec.state != secAnonymous) {
			sec = r
		}
	}
	l.serverMemo[key] = sec
	return sec
}

// collectAsyncAPI3 lists the entries of /operations, each tied to a channel
// by a $ref (spec.Parse has checked that it points into /channels).
func (l *linter) collectAsyncAPI3() {
	seen := map[*yaml.Node]bool{}
	keys, ops := fields(l.t.At(l.root, "operations"))
	for i, key := range keys {
		op := l.t.Follow(ops[i])
		if !isMap(op.Node) || seen[op.Node] {
			continue
		}
		seen[op.Node] = true
		o := &operation{name: key, keys: []string{key}, loc: op}
		ref, _ := str(l.t.Val(l.t.Val(op.Node, "channel"), "$ref"))
		chKey := "" // the channel's key stands in for a null address, as in spec.Bindings
		if tok, ok := strings.CutPrefix(ref, "#/channels/"); ok {
			if u, err := url.PathUnescape(tok); err == nil { // URI fragment first, then RFC 6901
				chKey = strings.ReplaceAll(strings.ReplaceAll(u, "~1", "/"), "~0", "~")
			}
		}
		ch := l.t.Follow(l.t.Resolve(ref))
		o.template = chKey
		if a, ok := str(l.t.Val(ch.Node, "address")); ok && a != "" {
			o.template = a
		}
		if ms := l.t.At(op, "messages"); isSeq(ms.Node) {
			o.msgList = ms.Node
			for _, m := range elems(ms) {
				o.messages = append(o.messages, l.t.Follow(m))
			}
		} else {
			o.msgList = l.t.Val(ch.Node, "messages")
			o.messages = l.channelMessages(ch)
		}
		o.sec = l.ownOr(op, func() security {
			list := l.t.Val(ch.Node, "servers")
			return l.serverSecurity(list, func() []loc {
				if !isSeq(list) {
					_, ss := fields(l.t.At(l.root, "servers"))
					return ss
				}
				var out []loc
				for _, s := range elems(loc{Node: list}) {
					out = append(out, l.t.Follow(s))
				}
				return out
			})
		})
		l.ops = append(l.ops, o)
	}
}

// channelMessages resolves the messages of an AsyncAPI 3 channel, once per
// channel: many operations may share one channel.
func (l *linter) channelMessages(ch loc) []loc {
	if ms, ok := l.msgMemo[ch.Node]; ok {
		return ms
	}
	var out []loc
	_, ms := fields(l.t.At(ch, "messages"))
	for _, m := range ms {
		out = append(out, l.t.Follow(m))
	}
	l.msgMemo[ch.Node] = out
	return out
}
