package validate

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// asyncURL is the synthetic URL of an AsyncAPI document in the compiler.
const asyncURL = "mem://asyncapi.json"

// CompileAsyncAPI compiles the payload schema of every message of every
// channel of an AsyncAPI 2.x or 3.0 document, in JSON or YAML:
//   - 2.x: channels.X.publish.message and channels.X.subscribe.message (a
//     message or a oneOf list of messages);
//   - 3.0: channels.X.messages.*; operations only reference these, so they
//     add no payloads of their own.
//
// Payload schemas are AsyncAPI schemas (a JSON Schema draft-07 superset),
// JSON Schema, or OpenAPI 3.0 schemas, per the message's schemaFormat.
// Messages in other formats (Avro, RAML, Protobuf) or with a non-JSON
// contentType are skipped: their channel has no validator unless another
// message provides one. External $refs are refused.
func CompileAsyncAPI(doc []byte) (*Set, error) {
	root, err := loadDocument(doc)
	if err != nil {
		return nil, err
	}
	version, _ := root["asyncapi"].(string)
	v2 := strings.HasPrefix(version, "2.")
	if !v2 && !strings.HasPrefix(version, "3.") {
		return nil, fmt.Errorf("/asyncapi: unsupported version %q, want 2.x or 3.0", version)
	}
	sc, err := newSchemaCompiler(jsonschema.Draft7, map[string]any{asyncURL: root})
	if err != nil {
		return nil, err
	}
	c := &asyncCompiler{
		root: root, sc: sc, v2: v2,
		plain: newTranslator(root, false, ""),
		oas30: newTranslator(root, true, ""),
	}
	c.defaultCT, _ = root["defaultContentType"].(string)
	set := &Set{channels: map[string]*Message{}}
	pool := newScratchPool()
	channels, _ := root["channels"].(map[string]any)
	byKey := map[string]*Message{}
	byAddress := map[string]*Message{}
	for _, key := range slices.Sorted(maps.Keys(channels)) {
		ch, chAt, err := deref(root, channels[key], []string{"channels", key})
		if err != nil {
			return nil, err
		}
		payloads, err := c.channel(ch, chAt)
		if err != nil {
			return nil, err
		}
		if len(payloads) == 0 {
			continue
		}
		m := &Message{channel: key, payloads: payloads, pool: pool}
		byKey[key] = m
		if addr, ok := ch["address"].(string); ok && !v2 {
			byAddress[addr] = m
		}
	}
	for addr, m := range byAddress {
		set.channels[addr] = m
	}
	for key, m := range byKey {
		set.channels[key] = m
	}
	return set, nil
}

type asyncCompiler struct {
	root      map[string]any
	sc        *schemaCompiler
	v2        bool
	defaultCT string
	plain     *translator // JSON Schema payloads: checks refs, rewrites nothing
	oas30     *translator // OpenAPI 3.0 payloads
}

// channel compiles the payloads of one channel's messages.
func (c *asyncCompiler) channel(ch map[string]any, at []string) ([]*prog, error) {
	type located struct {
		v  any
		at []string
	}
	var msgs []located
	if c.v2 {
		for _, dir := range []string{"publish", "subscribe"} {
			opv, ok := ch[dir]
			if !ok {
				continue
			}
			op, opAt, err := deref(c.root, opv, appendTok(at, dir))
			if err != nil {
				return nil, err
			}
			mv, ok := op["message"]
			if !ok {
				continue
			}
			m, mAt, err := deref(c.root, mv, appendTok(opAt, "message"))
			if err != nil {
				return nil, err
			}
			if list, ok := m["oneOf"].([]any); ok {
				for i, e := range list {
					msgs = append(msgs, located{e, appendTok(mAt, "oneOf", fmt.Sprint(i))})
				}
				continue
			}
			msgs = append(msgs, located{m, mAt})
		}
	} else {
		messages, _ := ch["messages"].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(messages)) {
			msgs = append(msgs, located{messages[name], appendTok(at, "messages", name)})
		}
	}
	var out []*prog
	for _, lm := range msgs {
		m, mAt, err := deref(c.root, lm.v, lm.at)
		if err != nil {
			return nil, err
		}
		p, err := c.payload(m, mAt)
		if err != nil {
			return nil, err
		}
		if p != nil && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// payload compiles one message's payload schema, or returns nil when the
// message has none the gateway can check.
func (c *asyncCompiler) payload(m map[string]any, at []string) (*prog, error) {
	ct, _ := m["contentType"].(string)
	if ct == "" {
		ct = c.defaultCT
	}
	if ct != "" && !isJSONMediaType(normalizeMediaType(ct)) {
		return nil, nil
	}
	pv, ok := m["payload"]
	if !ok {
		return nil, nil
	}
	format, _ := m["schemaFormat"].(string)
	pAt := appendTok(at, "payload")
	if pm, ok := pv.(map[string]any); ok && !c.v2 {
		// [AsyncAPI 3.0 Multi Format Schema Object]
		if sf, ok := pm["schemaFormat"].(string); ok {
			if _, ok := pm["schema"]; ok {
				format, pAt = sf, appendTok(pAt, "schema")
			}
		}
	}
	var tr *translator
	switch f := strings.ToLower(format); {
	case f == "", strings.HasPrefix(f, "application/vnd.aai.asyncapi"), strings.HasPrefix(f, "application/schema+json"), strings.HasPrefix(f, "application/schema+yaml"):
		tr = c.plain
	case strings.HasPrefix(f, "application/vnd.oai.openapi"):
		tr = c.oas30
	default:
		return nil, nil
	}
	if err := tr.schemaAt(pAt); err != nil {
		return nil, err
	}
	return c.sc.compile(asyncURL, pAt)
}
