package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/internal/model"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		name        string
		file        string
		format      string
		version     string
		title       string
		infoVersion string
		want        model.Bindings
	}{
		{
			name: "openapi 3.0 yaml", file: "openapi30.yaml",
			format: "openapi", version: "3.0.3", title: "Vehicle API", infoVersion: "1.2",
			want: model.Bindings{HTTP: &model.HTTPBinding{BasePath: "/v1", Operations: []model.HTTPOperation{
				{Method: "GET", Path: "/vehicles", OperationID: "listVehicles"},
				{Method: "POST", Path: "/vehicles", OperationID: "createVehicle"},
				{Method: "DELETE", Path: "/vehicles/{vin}"},
				{Method: "GET", Path: "/vehicles/{vin}", OperationID: "getVehicle"},
				{Method: "PUT", Path: "/vehicles/{vin}/telemetry", OperationID: "putTelemetry"},
			}}},
		},
		{
			name: "openapi 3.1 json", file: "openapi31.json",
			format: "openapi", version: "3.1.0", title: "Charger API", infoVersion: "2.0.0",
			want: model.Bindings{HTTP: &model.HTTPBinding{BasePath: "/v2", Operations: []model.HTTPOperation{
				{Method: "GET", Path: "/chargers", OperationID: "listChargers"},
				{Method: "GET", Path: "/chargers/{id}/sessions", OperationID: "listSessions"},
				{Method: "POST", Path: "/chargers/{id}/sessions", OperationID: "startSession"},
			}}},
		},
		{
			name: "openapi coap server", file: "openapi-coap.yaml",
			format: "openapi", version: "3.0.3", title: "Sensor node", infoVersion: "1",
			want: model.Bindings{CoAP: &model.CoAPBinding{Resources: []model.CoAPResource{
				{Path: "/sensors/config", Methods: []string{"GET", "PUT"}},
				{Path: "/sensors/temperature", Methods: []string{"GET"}},
			}}},
		},
		{
			name: "asyncapi 2.6", file: "asyncapi26.yaml",
			format: "asyncapi", version: "2.6.0", title: "Fleet telemetry", infoVersion: "1.0.0",
			want: model.Bindings{MQTT: &model.MQTTBinding{Channels: []model.MQTTChannel{
				{Topic: "fleet/broadcast", Action: "subscribe"},
				{Topic: "fleet/{vin}/commands", Action: "publish", OperationID: "ackCommand"},
				{Topic: "fleet/{vin}/commands", Action: "subscribe", OperationID: "receiveCommand"},
				{Topic: "fleet/{vin}/telemetry", Action: "publish", OperationID: "sendTelemetry"},
			}}},
		},
		{
			name: "asyncapi 3.0", file: "asyncapi30.yaml",
			format: "asyncapi", version: "3.0.0", title: "Door locks", infoVersion: "0.3.0",
			want: model.Bindings{MQTT: &model.MQTTBinding{Channels: []model.MQTTChannel{
				{Topic: "events", Action: "publish", OperationID: "emitEvent"},
				{Topic: "locks/audit", Action: "publish", OperationID: "writeAudit"},
				{Topic: "locks/{lockId}/command", Action: "subscribe", OperationID: "takeCommand"},
				{Topic: "locks/{lockId}/state", Action: "publish", OperationID: "reportState"},
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			d, err := Parse(content)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if d.Format != tt.format || d.Version != tt.version || d.Title != tt.title || d.InfoVersion != tt.infoVersion {
				t.Errorf("got %q %q %q %q, want %q %q %q %q", d.Format, d.Version, d.Title, d.InfoVersion,
					tt.format, tt.version, tt.title, tt.infoVersion)
			}
			if got := d.Bindings(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Bindings:\n got %s\nwant %s", asJSON(got), asJSON(tt.want))
			}
		})
	}
}

// TestParseValidInline covers smaller documents that must be accepted.
func TestParseValidInline(t *testing.T) {
	const oa = "openapi: 3.0.0\ninfo: {title: t, version: v}\n"
	tests := []struct {
		name string
		doc  string
		want model.Bindings
	}{
		{
			name: "no servers means base path /",
			doc:  oa + "paths:\n  /a:\n    get: {}\n",
			want: httpBinding("/", model.HTTPOperation{Method: "GET", Path: "/a"}),
		},
		{
			name: "server url without path",
			doc:  oa + "servers: [{url: 'https://example.com'}]\npaths: {}\n",
			want: httpBinding("/"),
		},
		{
			name: "relative server url and variables",
			doc:  oa + "servers: [{url: '{base}/x/', variables: {base: {default: v3}}}]\npaths: {}\n",
			want: httpBinding("/v3/x"),
		},
		{
			name: "path item ref cycle terminates",
			doc:  oa + "paths:\n  /a: {$ref: '#/paths/~1b'}\n  /b: {$ref: '#/paths/~1a'}\n",
			want: httpBinding("/"),
		},
		{
			name: "local operation wins over path item ref",
			doc: oa + "paths:\n  /a:\n    $ref: '#/components/x/p'\n    get: {operationId: local}\n" +
				"components:\n  x:\n    p:\n      get: {operationId: remote}\n      put: {operationId: remote2}\n",
			want: httpBinding("/",
				model.HTTPOperation{Method: "GET", Path: "/a", OperationID: "local"},
				model.HTTPOperation{Method: "PUT", Path: "/a", OperationID: "remote2"}),
		},
		{
			name: "yaml alias shared between paths",
			doc:  oa + "paths:\n  /a: &item\n    get: {operationId: same}\n  /b: *item\n",
			want: httpBinding("/",
				model.HTTPOperation{Method: "GET", Path: "/a", OperationID: "same"},
				model.HTTPOperation{Method: "GET", Path: "/b", OperationID: "same"}),
		},
		{
			name: "refs with escapes, percent-encoding and array index",
			doc: oa + "servers: [{url: /s}]\npaths:\n  /c/{id}:\n    get:\n      responses:\n" +
				"        '200': {$ref: '#/paths/~1d%7E0x/get/responses/200'}\n" +
				"        '201': {$ref: '#/servers/0'}\n" +
				"        '202': {$ref: '#'}\n" +
				"  /d~x:\n    get: {responses: {'200': {description: ok}}}\n",
			want: httpBinding("/s",
				model.HTTPOperation{Method: "GET", Path: "/c/{id}"},
				model.HTTPOperation{Method: "GET", Path: "/d~x"}),
		},
		{
			name: "json with tabs and a property named $ref",
			doc: "{\n\t\"openapi\": \"3.1.1\",\n\t\"info\": {\"title\": \"t\", \"version\": \"v\"},\n" +
				"\t\"components\": {\"schemas\": {\"A\": {\"properties\": {\"$ref\": {\"type\": \"string\"}}}}}\n}\n",
			want: httpBinding("/"),
		},
		{
			name: "json with a byte order mark",
			doc:  "\ufeff{\"openapi\": \"3.0.1\", \"info\": {\"title\": \"t\", \"version\": \"v\"}, \"paths\": {\"/x\": {\"head\": {}}}}",
			want: httpBinding("/", model.HTTPOperation{Method: "HEAD", Path: "/x"}),
		},
		{
			name: "extension keys in paths are not paths",
			doc:  oa + "paths:\n  x-note: {a: b}\n",
			want: httpBinding("/"),
		},
		{
			name: "asyncapi 2.0 ref'd channel and no operations",
			doc: "asyncapi: 2.0.0\ninfo: {title: t, version: v}\nchannels:\n  a/b: {$ref: '#/components/x'}\n  c: {}\n" +
				"components:\n  x: {publish: {operationId: p}}\n",
			want: model.Bindings{MQTT: &model.MQTTBinding{Channels: []model.MQTTChannel{
				{Topic: "a/b", Action: "publish", OperationID: "p"},
			}}},
		},
		{
			name: "asyncapi 3 channel key with slash, no address",
			doc: "asyncapi: 3.0.0\ninfo: {title: t, version: v}\nchannels:\n  a/b: {}\n" +
				"operations:\n  o: {action: receive, channel: {$ref: '#/channels/a~1b'}}\n",
			want: model.Bindings{MQTT: &model.MQTTBinding{Channels: []model.MQTTChannel{
				{Topic: "a/b", Action: "subscribe", OperationID: "o"},
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.doc))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := d.Bindings(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Bindings:\n got %s\nwant %s", asJSON(got), asJSON(tt.want))
			}
		})
	}
}

func httpBinding(base string, ops ...model.HTTPOperation) model.Bindings {
	return model.Bindings{HTTP: &model.HTTPBinding{BasePath: base, Operations: ops}}
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestParseErrors(t *testing.T) {
	const (
		oa   = "openapi: 3.0.0\ninfo: {title: t, version: v}\n"  // 2 lines
		oa31 = "openapi: 3.1.0\ninfo: {title: t, version: v}\n"  // 2 lines
		aa2  = "asyncapi: 2.6.0\ninfo: {title: t, version: v}\n" // 2 lines
		aa3  = "asyncapi: 3.0.0\ninfo: {title: t, version: v}\n" // 2 lines
	)
	deep := oa + "x: " + strings.Repeat("[", 300) + strings.Repeat("]", 300) + "\n"
	tests := []struct {
		name    string
		doc     string
		pointer string
		line    int
		msg     string // substring of the message
	}{
		// Content and syntax.
		{name: "empty", doc: "", msg: "document is empty"},
		{name: "whitespace", doc: " \n\t\n", msg: "document is empty"},
		{name: "comments only", doc: "# nothing\n", msg: "document is empty"},
		{name: "too large", doc: strings.Repeat("#", MaxSize+1), msg: "document exceeds 4 MiB"},
		{name: "yaml syntax", doc: "openapi: 3.0.0\ninfo:\n  title: x\n   version: 1\n", line: 4, msg: "invalid YAML or JSON"},
		{name: "json syntax", doc: "{\n\"openapi\": \"3.0.0\",\n\"info\": {\"title\": \"t\",,}\n}\n", line: 3, msg: "invalid YAML or JSON"},
		{name: "yaml missing key", doc: "a: 1\nb:\n  c: 1\n d: 2\n", line: 4, msg: "did not find expected key"},
		{name: "json double comma", doc: "{\"a\": 1,\n \"b\": [1,\n 2,,\n 3]}", line: 3, msg: "did not find expected node content"},
		{name: "root is a sequence", doc: "\n- a\n- b\n", line: 2, msg: "root must be a mapping"},
		{name: "root is a scalar", doc: "hello\n", line: 1, msg: "root must be a mapping"},
		{name: "two documents", doc: oa + "paths: {}\n---\nfoo: 1\n", line: 4, msg: "only one YAML document"},

		// Structure every consumer must agree on.
		{name: "duplicate key", doc: "openapi: 3.0.0\ninfo:\n  title: a\n  title: b\n", pointer: "/info/title", line: 4, msg: "duplicate key"},
		{name: "duplicate key in a large mapping", doc: oa + "paths:\n" + manyPaths(20) + "  /p3: {}\n", pointer: "/paths/~1p3", line: 24, msg: "duplicate key"},
		{name: "merge key", doc: oa + "x: &b {a: 1}\ny:\n  <<: *b\n", pointer: "/y/<<", line: 5, msg: "merge keys"},
		{name: "non-scalar key", doc: oa + "? [a]\n: 1\n", pointer: "", line: 3, msg: "keys must be strings"},
		{name: "nesting too deep", doc: deep, pointer: "/x" + strings.Repeat("/0", 256), line: 3, msg: "deeper than 256"},
		{name: "self-referential alias", doc: oa + "x: &a [*a]\n", pointer: "/x" + strings.Repeat("/0", 256), line: 3, msg: "deeper than 256"},

		// Format and version.
		{name: "no format field", doc: "info: {title: t, version: v}\n", line: 1, msg: "expected an \"openapi\" or \"asyncapi\" field"},
		{name: "swagger 2", doc: "swagger: '2.0'\ninfo: {title: t, version: v}\n", pointer: "/swagger", line: 1, msg: "Swagger 2.0"},
		{name: "both formats", doc: "openapi: 3.0.0\nasyncapi: 2.6.0\n", pointer: "/asyncapi", line: 2, msg: "both"},
		{name: "openapi is a number", doc: "openapi: 3.1\n", pointer: "/openapi", line: 1, msg: "must be a string"},
		{name: "openapi 3.2", doc: "openapi: 3.2.0\n", pointer: "/openapi", line: 1, msg: "unsupported OpenAPI version"},
		{name: "openapi 2.0", doc: "\nopenapi: '2.0'\n", pointer: "/openapi", line: 2, msg: "unsupported OpenAPI version"},
		{name: "openapi missing patch", doc: "openapi: '3.0'\n", pointer: "/openapi", line: 1, msg: "unsupported OpenAPI version"},
		{name: "asyncapi 2.7", doc: "asyncapi: 2.7.0\n", pointer: "/asyncapi", line: 1, msg: "unsupported AsyncAPI version"},
		{name: "asyncapi 3.1", doc: "asyncapi: 3.1.0\n", pointer: "/asyncapi", line: 1, msg: "unsupported AsyncAPI version"},
		{name: "asyncapi 1.2", doc: "asyncapi: 1.2.0\n", pointer: "/asyncapi", line: 1, msg: "unsupported AsyncAPI version"},

		// Info.
		{name: "info missing", doc: "openapi: 3.0.0\npaths: {}\n", line: 1, msg: "\"info\" is required"},
		{name: "info not a mapping", doc: "openapi: 3.0.0\ninfo: text\n", pointer: "/info", line: 2, msg: "info must be a mapping"},
		{name: "title missing", doc: "openapi: 3.0.0\ninfo:\n  version: v\n", pointer: "/info", line: 3, msg: "\"title\" is required"},
		{name: "version is a number", doc: "openapi: 3.0.0\ninfo:\n  title: t\n  version: 1.0\n", pointer: "/info/version", line: 4, msg: "version must be a string"},

		// References.
		{name: "external url ref", doc: oa + "paths:\n  /a:\n    get:\n      responses:\n        '200': {$ref: 'https://evil.example/x.yaml'}\n",
			pointer: "/paths/~1a/get/responses/200/$ref", line: 7, msg: "external $ref not allowed"},
		{name: "external file ref", doc: oa + "paths: {}\ncomponents:\n  schemas:\n    A:\n      $ref: ./common.yaml#/A\n",
			pointer: "/components/schemas/A/$ref", line: 7, msg: "external $ref not allowed"},
		{name: "unresolved ref", doc: oa + "paths: {}\ncomponents:\n  schemas:\n    A: {$ref: '#/components/schemas/B'}\n",
			pointer: "/components/schemas/A/$ref", line: 6, msg: "does not resolve"},
		{name: "unresolved anchor ref", doc: oa31 + "components:\n  schemas:\n    A: {$ref: '#nope'}\n",
			pointer: "/components/schemas/A/$ref", line: 5, msg: "no $anchor"},
		{name: "bad percent-encoding", doc: oa + "paths: {}\nx: {$ref: '#/a%zz'}\n", pointer: "/x/$ref", line: 4, msg: "percent-encoding"},
		{name: "bad pointer escape", doc: oa + "paths: {}\nx: {$ref: '#/paths/~2'}\n", pointer: "/x/$ref", line: 4, msg: "does not resolve"},
		{name: "array index out of range", doc: oa + "paths: {}\ns: [a]\nx: {$ref: '#/s/1'}\n", pointer: "/x/$ref", line: 5, msg: "does not resolve"},

		// OpenAPI.
		{name: "paths missing in 3.0", doc: oa, line: 1, msg: "\"paths\" is required"},
		{name: "nothing in 3.1", doc: oa31, line: 1, msg: "at least one of"},
		{name: "paths not a mapping", doc: oa + "paths: []\n", pointer: "/paths", line: 3, msg: "paths must be a mapping"},
		{name: "path without slash", doc: oa + "paths:\n  vehicles: {}\n", pointer: "/paths/vehicles", line: 4, msg: "must start with"},
		{name: "unclosed brace", doc: oa + "paths:\n  /a/{id: {}\n", pointer: "/paths/~1a~1{id", line: 4, msg: "without a matching \"}\""},
		{name: "empty parameter", doc: oa + "paths:\n  /a/{}: {}\n", pointer: "/paths/~1a~1{}", line: 4, msg: "empty parameter name"},
		{name: "stray closing brace", doc: oa + "paths:\n  /a/id}: {}\n", pointer: "/paths/~1a~1id}", line: 4, msg: "without a matching \"{\""},
		{name: "nested brace", doc: oa + "paths:\n  /a/{{id}}: {}\n", pointer: "/paths/~1a~1{{id}}", line: 4, msg: "do not nest"},
		{name: "repeated parameter", doc: oa + "paths:\n  /a/{id}/b/{id}: {}\n", pointer: "/paths/~1a~1{id}~1b~1{id}", line: 4, msg: "appears twice"},
		{name: "path item not a mapping", doc: oa + "paths:\n  /a: 5\n", pointer: "/paths/~1a", line: 4, msg: "path item must be a mapping"},
		{name: "operation not a mapping", doc: oa + "paths:\n  /a:\n    get: []\n", pointer: "/paths/~1a/get", line: 5, msg: "operation must be a mapping"},
		{name: "responses not a mapping", doc: oa + "paths:\n  /a:\n    get:\n      responses: ok\n", pointer: "/paths/~1a/get/responses", line: 6, msg: "responses must be a mapping"},
		{name: "operationId not a string", doc: oa + "paths:\n  /a:\n    get: {operationId: [x]}\n", pointer: "/paths/~1a/get/operationId", line: 5, msg: "must be a string"},
		{name: "duplicate operationId", doc: oa + "paths:\n  /a:\n    get: {operationId: x}\n  /b:\n    put: {operationId: x}\n",
			pointer: "/paths/~1b/put/operationId", line: 7, msg: "already used by the operation at line 5"},
		{name: "path item ref to a scalar", doc: oa + "paths:\n  /a: {$ref: '#/info/title'}\n", pointer: "/paths/~1a/$ref", line: 4, msg: "to a path item"},
		{name: "operation error behind a ref", doc: oa + "paths:\n  /a: {$ref: '#/components/x'}\ncomponents:\n  x:\n    get: 1\n",
			pointer: "/components/x/get", line: 7, msg: "operation must be a mapping"},
		{name: "webhooks not a mapping", doc: oa31 + "webhooks: 1\n", pointer: "/webhooks", line: 3, msg: "webhooks must be a mapping"},
		{name: "servers not a sequence", doc: oa + "paths: {}\nservers: {url: /}\n", pointer: "/servers", line: 4, msg: "must be a sequence"},
		{name: "server url missing", doc: oa + "paths: {}\nservers:\n  - description: x\n", pointer: "/servers/0", line: 5, msg: "\"url\" is required"},
		{name: "server variable undeclared", doc: oa + "paths: {}\nservers:\n  - url: /\n  - url: 'https://{host}/v1'\n",
			pointer: "/servers/1/url", line: 6, msg: "{host}"},
		{name: "server variable without default", doc: oa + "paths: {}\nservers:\n  - url: 'https://{host}/v1'\n    variables:\n      host: {enum: [a]}\n",
			pointer: "/servers/0/variables/host", line: 7, msg: "\"default\" is required"},
		{name: "server url does not parse", doc: oa + "paths: {}\nservers:\n  - url: 'http://[::1'\n", pointer: "/servers/0/url", line: 5, msg: "does not parse"},

		// AsyncAPI.
		{name: "channels not a mapping", doc: aa2 + "channels: [a]\n", pointer: "/channels", line: 3, msg: "channels must be a mapping"},
		{name: "asyncapi servers not a mapping", doc: aa2 + "servers: [a]\n", pointer: "/servers", line: 3, msg: "servers must be a mapping"},
		{name: "channel not a mapping", doc: aa2 + "channels:\n  a/b: x\n", pointer: "/channels/a~1b", line: 4, msg: "channel must be a mapping"},
		{name: "publish not a mapping", doc: aa2 + "channels:\n  a/b:\n    publish: x\n", pointer: "/channels/a~1b/publish", line: 5, msg: "publish operation must be a mapping"},
		{name: "channel template", doc: aa2 + "channels:\n  a/{b: {}\n", pointer: "/channels/a~1{b", line: 4, msg: "without a matching"},
		{name: "asyncapi 2 duplicate operationId", doc: aa2 + "channels:\n  a:\n    publish: {operationId: o}\n    subscribe: {operationId: o}\n",
			pointer: "/channels/a/subscribe/operationId", line: 6, msg: "already used"},
		{name: "operations not a mapping", doc: aa3 + "operations: []\n", pointer: "/operations", line: 3, msg: "operations must be a mapping"},
		{name: "action missing", doc: aa3 + "channels: {c: {}}\noperations:\n  o:\n    channel: {$ref: '#/channels/c'}\n",
			pointer: "/operations/o", line: 6, msg: "\"action\" is required"},
		{name: "action invalid", doc: aa3 + "channels: {c: {}}\noperations:\n  o:\n    action: publish\n    channel: {$ref: '#/channels/c'}\n",
			pointer: "/operations/o/action", line: 6, msg: "\"send\" or \"receive\""},
		{name: "channel missing", doc: aa3 + "operations:\n  o:\n    action: send\n", pointer: "/operations/o", line: 5, msg: "\"channel\" is required"},
		{name: "channel not a reference", doc: aa3 + "operations:\n  o:\n    action: send\n    channel: {address: x}\n",
			pointer: "/operations/o/channel", line: 6, msg: "must be a reference"},
		{name: "channel ref outside channels", doc: aa3 + "components: {channels: {c: {}}}\noperations:\n  o:\n    action: send\n    channel: {$ref: '#/components/channels/c'}\n",
			pointer: "/operations/o/channel/$ref", line: 7, msg: "entry of /channels"},
		{name: "operation ref to a scalar", doc: aa3 + "operations:\n  o: {$ref: '#/info/title'}\n", pointer: "/operations/o/$ref", line: 4, msg: "to an operation"},
		{name: "operation ref to a channel", doc: aa3 + "channels: {c: {}}\noperations:\n  o: {$ref: '#/channels/c'}\n",
			pointer: "/channels/c", line: 3, msg: "\"action\" is required"},
		{name: "address not a string", doc: aa3 + "channels:\n  c:\n    address: [a]\n", pointer: "/channels/c/address", line: 5, msg: "string or null"},
		{name: "address template", doc: aa3 + "channels:\n  c:\n    address: 'a/{}'\n", pointer: "/channels/c/address", line: 5, msg: "empty parameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want an error", d)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if d != nil {
				t.Errorf("got a Document with an error")
			}
			if e.Pointer != tt.pointer || e.Line != tt.line || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("got pointer %q line %d message %q;\nwant pointer %q line %d message containing %q",
					e.Pointer, e.Line, e.Message, tt.pointer, tt.line, tt.msg)
			}
		})
	}
}

// manyPaths returns n path entries /p0.../p(n-1), each on one line, enough
// to take the walker's large-mapping branch.
func manyPaths(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("  /p")
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(strings.Repeat("x", i/26))
		b.WriteString(": {}\n")
	}
	return strings.Replace(b.String(), "/pd:", "/p3:", 1)
}

// TestHostileInput checks that documents built to exhaust memory or time are
// refused quickly, with an Error.
func TestHostileInput(t *testing.T) {
	laughs := "openapi: 3.0.0\ninfo: {title: t, version: v}\npaths: {}\n" +
		"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		laughs += n + ": &" + n + " [" + strings.TrimSuffix(strings.Repeat("*"+prev+", ", 10), ", ") + "]\n"
		prev = n
	}
	wide := "openapi: 3.0.0\ninfo: {title: t, version: v}\npaths: {}\nx: [" +
		strings.TrimSuffix(strings.Repeat("0,", 1_100_000), ",") + "]\n"
	var shared strings.Builder
	shared.WriteString("openapi: 3.0.0\ninfo: {title: t, version: v}\npaths:\n  /big:\n")
	for _, m := range httpMethods {
		shared.WriteString("    " + m + ": {}\n")
	}
	for i := range 20_000 {
		fmt.Fprintf(&shared, "  /p%d: {$ref: '#/paths/~1big'}\n", i)
	}
	tests := []struct {
		name    string
		doc     string
		pointer string
		line    int
		msg     string
	}{
		// 8 operations per path, through a $ref the walker does not expand.
		{name: "operations multiplied by a shared path item", doc: shared.String(), pointer: "/paths/~1p12499", line: 12512, msg: "more than 100000 operations"},
		// 10^9 leaves if expanded; refused after maxNodes visits.
		{name: "billion laughs", doc: laughs, pointer: "/f/7/8/8/8/7/4", line: 4, msg: "more than 1000000 nodes"},
		{name: "too many nodes", doc: wide, pointer: "/x/999987", line: 4, msg: "more than 1000000 nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Boundedness is proven by the refusal at the caps, not by a
			// wall-clock limit (which flakes on a loaded CI machine).
			_, err := Parse([]byte(tt.doc))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if e.Pointer != tt.pointer || e.Line != tt.line || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("got pointer %q line %d message %q;\nwant pointer %q line %d message containing %q",
					e.Pointer, e.Line, e.Message, tt.pointer, tt.line, tt.msg)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{name: "full", err: Error{Pointer: "/paths/~1a", Line: 12, Column: 3, Message: "m"}, want: "line 12, column 3 (/paths/~1a): m"},
		{name: "no column", err: Error{Pointer: "/x", Line: 2, Message: "m"}, want: "line 2 (/x): m"},
		{name: "root", err: Error{Line: 1, Column: 1, Message: "m"}, want: "line 1, column 1: m"},
		{name: "pointer only", err: Error{Pointer: "/x", Message: "m"}, want: "(/x): m"},
		{name: "message only", err: Error{Message: "m"}, want: "m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBindingsZeroDocument(t *testing.T) {
	var nilDoc *Document
	for _, d := range []*Document{nilDoc, {}, {Format: FormatOpenAPI}} {
		if got := d.Bindings(); !reflect.DeepEqual(got, model.Bindings{}) {
			t.Errorf("got %s", asJSON(got))
		}
	}
}

func TestParseKeepsTree(t *testing.T) {
	d, err := Parse(bytes.TrimSpace([]byte("openapi: 3.1.0\ninfo: {title: t, version: v}\ncomponents: {}\n")))
	if err != nil {
		t.Fatal(err)
	}
	if d.root == nil || len(d.root.Content) != 6 {
		t.Fatalf("root not kept: %+v", d.root)
	}
}

func TestPointerTokens(t *testing.T) {
	tests := []struct {
		name    string
		escaped string
		want    string
		ok      bool
	}{
		{name: "plain", escaped: "paths", want: "paths", ok: true},
		{name: "slash", escaped: "~1a~1{id}", want: "/a/{id}", ok: true},
		{name: "tilde", escaped: "a~0b", want: "a~b", ok: true},
		{name: "tilde then one is not a slash", escaped: "~01", want: "~1", ok: true},
		{name: "bad escape", escaped: "~2", ok: false},
		{name: "trailing tilde", escaped: "a~", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := unescapeToken(tt.escaped)
			if ok != tt.ok || got != tt.want {
				t.Errorf("unescapeToken(%q) = %q, %v; want %q, %v", tt.escaped, got, ok, tt.want, tt.ok)
			}
			if ok && child("", got) != "/"+tt.escaped {
				t.Errorf("child does not round-trip %q: %q", got, child("", got))
			}
		})
	}
}
