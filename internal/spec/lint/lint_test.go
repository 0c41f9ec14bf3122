package lint

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/spec"
)

// at is where a finding is expected.
type at struct {
	Pointer string
	Line    int
}

// TestRules runs each rule over its fixtures: testdata/<rule>/pass.yaml must
// give no finding at all (each is an example of a clean document), fail.yaml
// exactly the listed findings of its rule. A fixture
// may come with <kind>.policy.json (the version's policy) and
// <kind>.config.json (levels and waivers).
func TestRules(t *testing.T) {
	tests := []struct {
		rule string
		want []at
	}{
		{rule: "operation-security", want: []at{
			{"/paths/~1status/get", 10},
			{"/paths/~1fleet/get/security/0/oauth", 18},
		}},
		{rule: "anonymous-needs-waiver", want: []at{
			{"/paths/~1health/get/security", 14},
			{"/paths/~1catalogue/get/security", 20},
		}},
		{rule: "object-binding", want: []at{
			{"/paths/~1vehicles~1{vin}~1climate/post", 12},
			{"/paths/~1devices~1{deviceId}~1config/get", 17},
		}},
		{rule: "version-in-path", want: []at{
			{"/servers/0/url", 4},
		}},
		{rule: "secure-servers", want: []at{
			{"/servers/1/url", 5},
			{"/paths/~1status/get/servers/0/url", 18},
		}},
		{rule: "no-credentials-in-query", want: []at{
			{"/components/securitySchemes/key/in", 9},
			{"/components/parameters/AccessToken", 11},
			{"/paths/~1status/get/parameters/1", 26},
		}},
		{rule: "error-responses", want: []at{
			{"/paths/~1fleet/get/responses", 14},
		}},
		{rule: "bounded-schemas", want: []at{
			{"/components/schemas/Node/properties/label", 14},
			{"/paths/~1trees/post/parameters/0/schema", 29},
		}},
		{rule: "body-size-limit", want: []at{
			{"/paths/~1telemetry/post/requestBody", 14},
			{"/paths/~1telemetry/put/x-fleetgate-max-body-bytes", 22},
		}},
		{rule: "deprecated-successor", want: []at{
			{"/paths/~1locate/get/deprecated", 14},
			{"/paths/~1locate/post/deprecated", 19},
		}},
	}
	covered := map[string]bool{}
	for _, tc := range tests {
		covered[tc.rule] = true
		t.Run(tc.rule, func(t *testing.T) {
			for _, kind := range []string{"pass", "fail"} {
				doc, pol, cfg := fixture(t, tc.rule, kind)
				all := Lint(doc, pol, cfg)
				var got []at
				for _, f := range all {
					if f.Rule == tc.rule {
						got = append(got, at{f.Pointer, f.Line})
						if f.Message == "" || f.Column == 0 {
							t.Errorf("%s: finding without message or column: %+v", kind, f)
						}
					}
				}
				want := tc.want
				if kind == "pass" {
					want = nil
					if len(all) > 0 {
						t.Errorf("pass.yaml has findings: %+v", all)
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s.yaml: %s findings\n got %v\nwant %v\n(all: %+v)", kind, tc.rule, got, want, all)
				}
			}
		})
	}
	for _, r := range ruleset() {
		if r.run != nil && !covered[r.ID] {
			t.Errorf("rule %s has no fixture test", r.ID)
		}
	}
}

// fixture loads testdata/<rule>/<kind>.yaml and its optional policy and
// config.
func fixture(t *testing.T, rule, kind string) (*spec.Document, *model.Policy, Config) {
	t.Helper()
	base := filepath.Join("testdata", rule, kind)
	doc := parseFile(t, base+".yaml")
	var pol *model.Policy
	if b, err := os.ReadFile(base + ".policy.json"); err == nil {
		pol = &model.Policy{}
		if err := json.Unmarshal(b, pol); err != nil {
			t.Fatal(err)
		}
	}
	var cfg Config
	if b, err := os.ReadFile(base + ".config.json"); err == nil {
		if err := json.Unmarshal(b, &cfg); err != nil {
			t.Fatal(err)
		}
	}
	return doc, pol, cfg
}

func parseFile(t *testing.T, name string) *spec.Document {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, string(b))
}

func parse(t *testing.T, content string) *spec.Document {
	t.Helper()
	doc, err := spec.Parse([]byte(content))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc
}

// ruleIDs returns the rules of fs, with the operation, for compact
// comparisons.
func ruleIDs(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.Level)+" "+f.Rule+" "+f.Operation)
	}
	return out
}

// anonDoc has an anonymous operation and a secured one missing 403/429.
const anonDoc = `openapi: 3.0.3
info: {title: t, version: "1"}
servers: [{url: "https://api.example.com/v1"}]
security: [{bearer: []}]
components: {securitySchemes: {bearer: {type: http, scheme: bearer}}}
paths:
  /health:
    get: {operationId: health, security: [], responses: {"200": {description: ok}}}
  /fleet:
    get: {operationId: listFleet, responses: {"200": {description: ok}}}
`

func TestLevelsAndWaivers(t *testing.T) {
	doc := parse(t, anonDoc)
	tests := []struct {
		name   string
		cfg    Config
		want   []string
		errors bool
	}{
		{
			name:   "defaults",
			want:   []string{"error anonymous-needs-waiver health", "warn error-responses listFleet"},
			errors: true,
		},
		{
			name:   "level override",
			cfg:    Config{Levels: map[string]Level{"anonymous-needs-waiver": LevelWarn, "error-responses": LevelError}},
			want:   []string{"warn anonymous-needs-waiver health", "error error-responses listFleet"},
			errors: true,
		},
		{
			name: "off",
			cfg:  Config{Levels: map[string]Level{"anonymous-needs-waiver": LevelOff, "error-responses": LevelOff}},
		},
		{
			name:   "invalid level keeps the default",
			cfg:    Config{Levels: map[string]Level{"anonymous-needs-waiver": "none"}},
			want:   []string{"error anonymous-needs-waiver health", "warn error-responses listFleet"},
			errors: true,
		},
		{
			name: "waiver with reason",
			cfg:  Config{Waivers: []Waiver{{Rule: "anonymous-needs-waiver", Operation: "health", Reason: "LB probe"}}},
			want: []string{"warn error-responses listFleet"},
		},
		{
			name:   "waiver without reason waives nothing and is an error",
			cfg:    Config{Waivers: []Waiver{{Rule: "anonymous-needs-waiver", Operation: "health", Reason: " \t"}}},
			want:   []string{"error waiver-needs-reason health", "error anonymous-needs-waiver health", "warn error-responses listFleet"},
			errors: true,
		},
		{
			name:   "waiver-needs-reason cannot be switched off",
			cfg:    Config{Levels: map[string]Level{"waiver-needs-reason": LevelOff}, Waivers: []Waiver{{Rule: "error-responses", Operation: "listFleet"}}},
			want:   []string{"error waiver-needs-reason listFleet", "error anonymous-needs-waiver health", "warn error-responses listFleet"},
			errors: true,
		},
		{
			name:   "waiver for another operation does not apply and is unused",
			cfg:    Config{Waivers: []Waiver{{Rule: "anonymous-needs-waiver", Operation: "listFleet", Reason: "r"}}},
			want:   []string{"warn unused-waiver listFleet", "error anonymous-needs-waiver health", "warn error-responses listFleet"},
			errors: true,
		},
		{
			name: "waiver of a rule that is off is not unused",
			cfg: Config{Levels: map[string]Level{"error-responses": LevelOff},
				Waivers: []Waiver{{Rule: "error-responses", Operation: "listFleet", Reason: "r"}, {Rule: "anonymous-needs-waiver", Operation: "health", Reason: "r"}}},
		},
		{
			name: "unused-waiver off",
			cfg: Config{Levels: map[string]Level{"unused-waiver": LevelOff},
				Waivers: []Waiver{{Rule: "no-such-rule", Operation: "x", Reason: "r"}, {Rule: "anonymous-needs-waiver", Operation: "health", Reason: "r"}}},
			want: []string{"warn error-responses listFleet"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := Lint(doc, nil, tc.cfg)
			if got := ruleIDs(fs); !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			if HasErrors(fs) != tc.errors {
				t.Errorf("HasErrors = %v, want %v", HasErrors(fs), tc.errors)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{Levels: map[string]Level{"bounded-schemas": LevelOff}, Waivers: []Waiver{{Rule: "object-binding", Operation: "o", Reason: "r"}}}).Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	err := Config{
		Levels:  map[string]Level{"nope": LevelWarn, "bounded-schemas": "loud", "waiver-needs-reason": LevelOff},
		Waivers: []Waiver{{Rule: "typo", Operation: "o", Reason: "r"}, {Rule: "object-binding", Operation: "o"}},
	}.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{`"nope"`, `"loud"`, `"waiver-needs-reason" cannot`, `waivers[0]: unknown rule "typo"`, "waivers[1]: a reason"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestRulesInfo(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Rules() {
		if r.ID == "" || r.Description == "" || !r.Level.valid() || r.Level == LevelOff || seen[r.ID] {
			t.Errorf("bad rule info %+v", r)
		}
		seen[r.ID] = true
	}
}

func TestSorted(t *testing.T) {
	fs := Lint(parseFile(t, filepath.Join("testdata", "object-binding", "fail.yaml")), nil, Config{})
	if len(fs) == 0 {
		t.Fatal("no findings")
	}
	if !sort.SliceIsSorted(fs, func(i, j int) bool {
		return fs[i].Line < fs[j].Line || (fs[i].Line == fs[j].Line && fs[i].Rule < fs[j].Rule)
	}) {
		t.Errorf("findings not sorted: %+v", fs)
	}
	if Lint(nil, nil, Config{}) != nil {
		t.Error("nil document has findings")
	}
}

// TestJSON pins the JSON form the admin API serves.
func TestJSON(t *testing.T) {
	b, err := json.Marshal(Finding{Rule: "r", Level: LevelWarn, Message: "m", Pointer: "/p", Line: 3, Column: 4, Operation: "o"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"rule":"r","level":"warn","message":"m","pointer":"/p","line":3,"column":4,"operation":"o"}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
	var cfg Config
	dec := json.NewDecoder(strings.NewReader(`{"levels": {"bounded-schemas": "off"}, "waivers": [{"rule": "r", "operation": "o", "reason": "why"}]}`))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil || cfg.Levels["bounded-schemas"] != LevelOff || cfg.Waivers[0].Reason != "why" {
		t.Errorf("decode: %v %+v", err, cfg)
	}
}

func TestCredentialName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"token", true}, {"access_token", true}, {"accessToken", true}, {"id_token", true},
		{"key", true}, {"api_key", true}, {"apiKey", true}, {"apikey", true}, {"X-API-Key", true}, {"APIKey", true},
		{"client_secret", true}, {"password", true}, {"auth", true}, {"jwt", true},
		{"pageToken", false}, {"next_token", false}, {"continuationToken", false},
		{"sortKey", false}, {"keyword", false}, {"author", false}, {"vin", false}, {"limit", false}, {"", false},
	}
	for _, tc := range tests {
		if got := credentialName(tc.name); got != tc.want {
			t.Errorf("credentialName(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestIsObjectID(t *testing.T) {
	for name, want := range map[string]bool{
		"id": true, "vin": true, "deviceId": true, "device_id": true, "DeviceID": true, "uuid": true, "vehicleVin": true,
		"fleet": false, "region": false, "topic": false, "version": false,
	} {
		if got := isObjectID(name); got != want {
			t.Errorf("isObjectID(%q) = %v, want %v", name, got, want)
		}
	}
}
