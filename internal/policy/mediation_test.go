package policy

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseMQTTTarget(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want MQTTTarget
		err  string // substring of the error; "" means success
	}{
		{name: "default qos", in: "mqtt:fleet/{deviceId}/commands", want: MQTTTarget{Topic: "fleet/{deviceId}/commands", QoS: 1}},
		{name: "qos 0", in: "mqtt:fleet/{deviceId}/commands?qos=0", want: MQTTTarget{Topic: "fleet/{deviceId}/commands", QoS: 0}},
		{name: "reply with default timeout", in: "mqtt:fleet/{deviceId}/commands?qos=2&reply=fleet/{deviceId}/replies",
			want: MQTTTarget{Topic: "fleet/{deviceId}/commands", QoS: 2, Reply: "fleet/{deviceId}/replies", Timeout: 5 * time.Second}},
		{name: "reply with timeout", in: "mqtt:fleet/{deviceId}/commands?reply=fleet/{deviceId}/replies&timeout=1500ms",
			want: MQTTTarget{Topic: "fleet/{deviceId}/commands", QoS: 1, Reply: "fleet/{deviceId}/replies", Timeout: 1500 * time.Millisecond}},
		{name: "reply of another shape", in: "mqtt:fleet/{deviceId}/commands?reply=replies/{deviceId}",
			want: MQTTTarget{Topic: "fleet/{deviceId}/commands", QoS: 1, Reply: "replies/{deviceId}", Timeout: 5 * time.Second}},
		{name: "wildcard in topic", in: "mqtt:fleet/+/commands", err: "wildcards"},
		{name: "hash in topic", in: "mqtt:fleet/#", err: "wildcards"},
		{name: "encoded wildcard in reply", in: "mqtt:fleet/{d}/commands?reply=fleet/%2B/replies", err: "reply: may not contain wildcards"},
		{name: "not mqtt", in: "http://example.com", err: "looks like"},
		{name: "empty topic", in: "mqtt:", err: "looks like"},
		{name: "bad qos", in: "mqtt:fleet/x?qos=3", err: "qos must be"},
		{name: "qos not a number", in: "mqtt:fleet/x?qos=one", err: "qos must be"},
		{name: "unknown parameter", in: "mqtt:fleet/x?replay=fleet/y", err: `unknown parameter "replay"`},
		{name: "repeated parameter", in: "mqtt:fleet/x?qos=1&qos=2", err: `"qos" given 2 times`},
		{name: "bad query", in: "mqtt:fleet/x?qos=%zz", err: "parameters:"},
		{name: "empty reply", in: "mqtt:fleet/x?reply=", err: "reply: must not be empty"},
		{name: "reply equals topic", in: "mqtt:fleet/{d}/commands?reply=fleet/{d}/commands", err: "must differ"},
		{name: "reply may expand to topic", in: "mqtt:fleet/{d}/commands?reply=fleet/abc/{x}", err: "must differ"},
		{name: "timeout without reply", in: "mqtt:fleet/x?timeout=2s", err: "only a command with a reply"},
		{name: "timeout too long", in: "mqtt:fleet/x?reply=r/x&timeout=31s", err: "timeout must be"},
		{name: "timeout too short", in: "mqtt:fleet/x?reply=r/x&timeout=10ms", err: "timeout must be"},
		{name: "timeout garbage", in: "mqtt:fleet/x?reply=r/x&timeout=soon", err: "timeout must be"},
		{name: "half parameter in topic", in: "mqtt:fleet/x{id}/commands", err: "topic: level"},
		{name: "half parameter in reply", in: "mqtt:fleet/{id}/commands?reply=r/{id", err: "reply: level"},
		{name: "NUL in reply", in: "mqtt:fleet/x?reply=r/%00", err: "reply: must be UTF-8 without NUL"},
		{name: "invalid UTF-8 in reply", in: "mqtt:fleet/x?reply=r/%ff", err: "reply: must be UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMQTTTarget(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseMQTTTarget(%q) = %+v, %v; want error containing %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseMQTTTarget(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestMQTTTargetExpand(t *testing.T) {
	tgt := MQTTTarget{Topic: "fleet/{deviceId}/commands", Reply: "fleet/{deviceId}/replies/{kind}"}
	tests := []struct {
		name         string
		params       []Param
		topic, reply string
		ok, replyOK  bool
	}{
		{name: "all there", params: []Param{{"deviceId", "m1"}, {"kind", "reboot"}}, topic: "fleet/m1/commands", reply: "fleet/m1/replies/reboot", ok: true, replyOK: true},
		{name: "reply parameter missing", params: []Param{{"deviceId", "m1"}}, topic: "fleet/m1/commands", ok: true},
		{name: "slash would add a level", params: []Param{{"deviceId", "a/b"}, {"kind", "x"}}},
		{name: "wildcard value", params: []Param{{"deviceId", "#"}, {"kind", "x"}}},
		{name: "empty value", params: []Param{{"deviceId", ""}, {"kind", "x"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topic, ok := tgt.Expand(tc.params)
			reply, rok := tgt.ExpandReply(tc.params)
			if ok != tc.ok || topic != tc.topic || rok != tc.replyOK || reply != tc.reply {
				t.Fatalf("Expand = %q %v, ExpandReply = %q %v; want %q %v, %q %v", topic, ok, reply, rok, tc.topic, tc.ok, tc.reply, tc.replyOK)
			}
		})
	}
}

// FuzzParseMQTTTarget: no input panics, and whatever parses keeps the
// invariants the HTTP and MQTT adapters rely on.
func FuzzParseMQTTTarget(f *testing.F) {
	for _, s := range []string{"mqtt:fleet/{deviceId}/commands?qos=1", "mqtt:a?reply=b&timeout=2s", "mqtt:a/{x}?reply={x}/a",
		"mqtt:%", "mqtt:a?reply=%2B", "mqtt:a?qos=1&qos=1", "mqtt:{}/{x}?reply={y}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tgt, err := ParseMQTTTarget(s)
		if err != nil {
			return
		}
		if tgt.QoS > 2 || checkTemplate(tgt.Topic) != nil {
			t.Fatalf("%q parsed to %+v", s, tgt)
		}
		if tgt.Reply == "" {
			if tgt.Timeout != 0 {
				t.Fatalf("%q: timeout without reply: %+v", s, tgt)
			}
			return
		}
		if checkTemplate(tgt.Reply) != nil || !utf8.ValidString(tgt.Reply) || templatesOverlap(tgt.Topic, tgt.Reply) ||
			tgt.Timeout < MinReplyTimeout || tgt.Timeout > MaxReplyTimeout {
			t.Fatalf("%q parsed to %+v", s, tgt)
		}
		// Whatever parameters fill them, the two topics differ.
		params := []Param{{"deviceId", "d"}, {"x", "d"}, {"y", "d"}}
		a, aok := tgt.Expand(params)
		b, bok := tgt.ExpandReply(params)
		if aok && bok && a == b {
			t.Fatalf("%q: command and reply expand to the same topic %q", s, a)
		}
	})
}
