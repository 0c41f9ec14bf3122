package lint

import (
	"fmt"
	"slices"
	"testing"

	"github.com/fleetgate/fleetgate/internal/model"
)

// TestAsyncAPI runs the ruleset over AsyncAPI 2 and 3 documents, where
// security comes from servers as well as operations, and object
// identifiers from channel addresses.
func TestAsyncAPI(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		pol  *model.Policy
		want []string // "rule pointer line operation"
	}{
		{
			name: "asyncapi 2",
			doc: `asyncapi: 2.6.0
info: {title: t, version: "1"}
servers:
  prod: {url: "mqtts://broker.example.com:8883", protocol: mqtt, security: [{cert: []}]}
  lab: {url: "broker.lab:1883", protocol: mqtt, security: [{cert: []}]}
components:
  securitySchemes:
    cert: {type: X509}
channels:
  fleet/v1/{vin}/telemetry:
    publish:
      operationId: sendTelemetry
      message:
        payload: {type: string, maxLength: 256}
  fleet/v1/broadcast:
    servers: [prod]
    subscribe:
      security: []
      message: {payload: {type: array, items: {type: integer}}}
`,
			pol: &model.Policy{Rules: []string{"principal.id != ''"}},
			want: []string{
				"secure-servers /servers/lab/protocol 5 ",
				"object-binding /channels/fleet~1v1~1{vin}~1telemetry/publish 11 sendTelemetry",
				"anonymous-needs-waiver /channels/fleet~1v1~1broadcast/subscribe/security 18 subscribe fleet/v1/broadcast",
				"bounded-schemas /channels/fleet~1v1~1broadcast/subscribe/message/payload 19 subscribe fleet/v1/broadcast",
			},
		},
		{
			name: "asyncapi 2 bound by a policy rule",
			doc: `asyncapi: 2.6.0
info: {title: t, version: "1"}
servers:
  prod: {url: "mqtts://broker.example.com:8883/v1", protocol: mqtt, security: [{cert: []}]}
components:
  securitySchemes:
    cert: {type: X509}
channels:
  fleet/{vin}/telemetry:
    publish:
      message:
        payload: {type: string, maxLength: 256}
`,
			pol: &model.Policy{Operations: map[string]model.OperationPolicy{
				"publish fleet/{vin}/telemetry": {Rules: []string{"params['vin'] == device.attributes.vin"}},
			}},
		},
		{
			name: "asyncapi 2 missing security",
			doc: `asyncapi: 2.6.0
info: {title: t, version: "1"}
servers:
  prod: {url: "mqtts://broker.example.com:8883/v1", protocol: mqtt, security: [{cert: []}]}
  other: {url: "mqtts://broker2.example.com:8883/v1", protocol: mqtt}
components:
  securitySchemes:
    cert: {type: X509}
channels:
  fleet/status:
    publish:
      operationId: status
      message: {payload: {type: boolean}}
`,
			want: []string{"operation-security /channels/fleet~1status/publish 11 status"},
		},
		{
			name: "asyncapi 3",
			doc: `asyncapi: 3.0.0
info: {title: t, version: "1"}
servers:
  prod: {host: broker.example.com, pathname: /v1, protocol: secure-mqtt, security: [{$ref: '#/components/securitySchemes/cert'}]}
  dev: {host: "ws://dev.example.com", protocol: mqtt, security: []}
channels:
  state: {address: 'locks/{lockId}/state', servers: [{$ref: '#/servers/prod'}], messages: {s: {payload: {type: string, maxLength: 8}}}}
  cmd: {address: 'locks/{lockId}/cmd', messages: {c: {payload: {type: object}}}}
operations:
  report: {action: send, channel: {$ref: '#/channels/state'}}
  take:
    action: receive
    channel: {$ref: '#/channels/cmd'}
components:
  securitySchemes:
    cert: {type: X509}
`,
			pol: &model.Policy{Operations: map[string]model.OperationPolicy{
				"report": {Bindings: []model.IdentityBinding{{Param: "lockId", Equals: "principal.device"}}},
			}},
			want: []string{
				"anonymous-needs-waiver /servers/dev/security 5 take",
				"secure-servers /servers/dev/host 5 ",
				"object-binding /operations/take 11 take",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := Lint(parse(t, tc.doc), tc.pol, Config{})
			var got []string
			for _, f := range fs {
				got = append(got, fmt.Sprintf("%s %s %d %s", f.Rule, f.Pointer, f.Line, f.Operation))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n  %q\nwant\n  %q", got, tc.want)
			}
		})
	}
}
