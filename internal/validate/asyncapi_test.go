package validate

import (
	"strings"
	"testing"
)

func TestAsyncAPIPayloads(t *testing.T) {
	v2 := mustAsyncAPI(t, "asyncapi26.yaml")
	v3 := mustAsyncAPI(t, "asyncapi30.yaml")
	const telemetry = `{"deviceId":"truck-42","ts":1714566896,"readings":[{"sensor":"coolant","value":88.5,"unit":"C"}]}`
	for _, tc := range []struct {
		name    string
		set     *Set
		channel string
		payload string
		ptr     string
		kw      string
	}{
		{name: "2.6 valid", set: v2, channel: "fleet/{deviceId}/telemetry", payload: telemetry},
		{name: "2.6 $ref'd message and schema", set: v2, channel: "fleet/{deviceId}/telemetry", payload: strings.Replace(telemetry, `"C"`, `"F"`, 1), ptr: "/payload/readings/0/unit", kw: "enum"},
		{name: "2.6 required", set: v2, channel: "fleet/{deviceId}/telemetry", payload: `{"deviceId":"d","readings":[{"sensor":"s","value":1}]}`, ptr: "/payload/ts", kw: "required"},
		{name: "2.6 minItems", set: v2, channel: "fleet/{deviceId}/telemetry", payload: `{"deviceId":"d","ts":1,"readings":[]}`, ptr: "/payload/readings", kw: "minItems"},
		{name: "2.6 malformed", set: v2, channel: "fleet/{deviceId}/telemetry", payload: `{"deviceId":`, ptr: "/payload", kw: "json"},
		{name: "2.6 oneOf message first", set: v2, channel: "fleet/{deviceId}/commands", payload: `{"cmd":"lock"}`},
		{name: "2.6 oneOf message second", set: v2, channel: "fleet/{deviceId}/commands", payload: `{"cmd":"honk","seconds":2}`},
		{name: "2.6 no message matches", set: v2, channel: "fleet/{deviceId}/commands", payload: `{"cmd":"honk","seconds":9}`, ptr: "/payload", kw: "anyOf"},
		{name: "3.0 by address", set: v3, channel: "fleet/{deviceId}/telemetry", payload: `{"deviceId":"abc","readings":[{"sensor":"s","value":1,"nested":{"sensor":"t","value":2}}]}`},
		{name: "3.0 by key", set: v3, channel: "telemetry", payload: `{"deviceId":"ab","readings":[]}`, ptr: "/payload/deviceId", kw: "minLength"},
		{name: "3.0 recursive", set: v3, channel: "telemetry", payload: `{"deviceId":"abc","readings":[{"sensor":"s","value":1,"nested":{"sensor":"t"}}]}`, ptr: "/payload/readings/0/nested/value", kw: "required"},
		{name: "3.0 OpenAPI schema format, nullable", set: v3, channel: "alerts", payload: `{"level":"warn","note":null}`},
		{name: "3.0 OpenAPI schema format", set: v3, channel: "fleet/{deviceId}/alerts", payload: `{"level":"loud"}`, ptr: "/payload/level", kw: "enum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.set.Channel(tc.channel)
			if m == nil {
				t.Fatalf("no channel %q", tc.channel)
			}
			checkErr(t, m.ValidatePayload([]byte(tc.payload)), tc.ptr, tc.kw)
		})
	}
}

func TestAsyncAPIChannels(t *testing.T) {
	v2 := mustAsyncAPI(t, "asyncapi26.yaml")
	if v2.Channel("fleet/{deviceId}/firmware") != nil {
		t.Error("a channel whose only message is not JSON must have no validator")
	}
	if v2.Channel("fleet/{deviceId}/unknown") != nil {
		t.Error("unknown channel")
	}
	v3 := mustAsyncAPI(t, "asyncapi30.yaml")
	if got := len(v3.Channel("alerts").payloads); got != 1 {
		t.Errorf("alerts: %d payloads, want 1 (the Avro message is skipped)", got)
	}
	if v3.Channel("alerts") != v3.Channel("fleet/{deviceId}/alerts") {
		t.Error("key and address must name the same validator")
	}
}

func TestCompileAsyncAPIErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{name: "unsupported version", doc: "asyncapi: 1.2.0\n", want: "unsupported version"},
		{name: "external payload $ref", doc: "asyncapi: 2.6.0\nchannels:\n  a:\n    publish:\n      message:\n        payload: {$ref: 'https://attacker.example/s.json'}\n", want: "refused"},
		{name: "external message $ref", doc: "asyncapi: 3.0.0\nchannels:\n  a:\n    messages:\n      m: {$ref: 'file:///etc/passwd'}\n", want: "refused"},
		{name: "invalid payload schema", doc: "asyncapi: 3.0.0\nchannels:\n  a:\n    messages:\n      m:\n        payload: {type: 5}\n", want: "/channels/a/messages/m/payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileAsyncAPI([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
