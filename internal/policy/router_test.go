package policy

import (
	"strings"
	"testing"
)

func TestRouter(t *testing.T) {
	r := newRouter()
	routes := map[string]*Route{}
	for _, tc := range []struct{ action, tmpl string }{
		{"GET", "/v1/vehicles/{vin}/battery"},
		{"POST", "/v1/vehicles/{vin}/climate"},
		{"GET", "/v1/vehicles/self"},
		{"GET", "/v1/vehicles/{vin}"},
		{"publish", "fleet/{deviceId}/telemetry"},
		{"GET", "/v1/a/{x}/b/{y}"},
	} {
		rt := &Route{Template: tc.tmpl}
		routes[tc.action+" "+tc.tmpl] = rt
		if err := r.add(tc.action, tc.tmpl, rt); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, action, path, want string
		params                   string
	}{
		{"param", "GET", "/v1/vehicles/WVW1/battery", "GET /v1/vehicles/{vin}/battery", "vin=WVW1"},
		{"literal beats param", "GET", "/v1/vehicles/self", "GET /v1/vehicles/self", ""},
		{"param at end", "GET", "/v1/vehicles/WVW1", "GET /v1/vehicles/{vin}", "vin=WVW1"},
		{"two params", "GET", "/v1/a/1/b/2", "GET /v1/a/{x}/b/{y}", "x=1,y=2"},
		{"method matters", "DELETE", "/v1/vehicles/WVW1", "", ""},
		{"empty segment is no param", "GET", "/v1/vehicles//battery", "", ""},
		{"trailing slash differs", "GET", "/v1/vehicles/WVW1/", "", ""},
		{"too long", "GET", "/v1/vehicles/" + strings.Repeat("x", 9000), "", ""},
		{"mqtt topic", "publish", "fleet/d-17/telemetry", "publish fleet/{deviceId}/telemetry", "deviceId=d-17"},
		{"wildcard never matches a param", "publish", "fleet/+/telemetry", "", ""},
		{"extra level", "publish", "fleet/d/telemetry/x", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, ps := r.match(tc.action, tc.path, make([]Param, 0, MaxParams))
			if tc.want == "" {
				if rt != nil {
					t.Fatalf("matched %s", rt.Template)
				}
				return
			}
			if rt != routes[tc.want] {
				t.Fatalf("got %v, want %s", rt, tc.want)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.Name+"="+p.Value)
			}
			if strings.Join(got, ",") != tc.params {
				t.Fatalf("params %v, want %s", got, tc.params)
			}
		})
	}
	if err := r.add("GET", "/v1/vehicles/{id}/battery", &Route{}); err == nil {
		t.Fatal("a template of the same shape must collide")
	}
	for _, bad := range []string{"", "/v1/x{vin}", "/v1/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", "fleet/#"} {
		if err := newRouter().add("GET", bad, &Route{}); err == nil {
			t.Errorf("template %q accepted", bad)
		}
	}
}

func FuzzMatch(f *testing.F) {
	r := newRouter()
	for _, tmpl := range []string{"/v1/vehicles/{vin}/battery", "/v1/vehicles/self", "/{a}/{b}", "fleet/{id}/x", "/"} {
		_ = r.add("GET", tmpl, &Route{Template: tmpl})
	}
	for _, s := range []string{"/v1/vehicles/1/battery", "/", "//", "/a/b", "fleet/x/x", "/v1/vehicles/self", "\x00/\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		rt, ps := r.match("GET", path, make([]Param, 0, MaxParams))
		if rt == nil {
			return
		}
		if len(ps) > MaxParams {
			t.Fatalf("%d params", len(ps))
		}
		// Every extracted value is a non-empty segment of the path.
		for _, p := range ps {
			if p.Value == "" || strings.Contains(p.Value, "/") || !strings.Contains(path, p.Value) {
				t.Fatalf("bad param %+v from %q", p, path)
			}
		}
		// Rebuilding the path from the template and params gives the path back.
		segs := strings.Split(rt.Template, "/")
		i := 0
		for j, s := range segs {
			if _, ok := paramName(s); ok {
				segs[j] = ps[i].Value
				i++
			}
		}
		if strings.Join(segs, "/") != path {
			t.Fatalf("template %s with %v does not rebuild %q", rt.Template, ps, path)
		}
	})
}

func FuzzSplitTemplate(f *testing.F) {
	for _, s := range []string{"/v1/{a}", "{}", "/{", "a/{b}/c", "/x{y}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tmpl string) {
		r := newRouter()
		if err := r.add("GET", tmpl, &Route{Template: tmpl}); err != nil {
			return
		}
		want := &Route{Template: tmpl}
		r2 := newRouter()
		_ = r2.add("GET", tmpl, want)
		// The only route there is may be the only answer.
		if rt, _ := r2.match("GET", concrete(tmpl), make([]Param, 0, MaxParams)); rt != nil && rt != want {
			t.Fatalf("template %q matched a route it was not given", tmpl)
		}
	})
}

func TestSemver(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
		err  bool
	}{
		{"10.0.0", "2.1.0", 1, false},
		{"v1.2.3", "1.2.3", 0, false},
		{"1.2", "1.2.0", 0, false},
		{"1.0.0-rc.1", "1.0.0", -1, false},
		{"1.0.0-alpha", "1.0.0-alpha.1", -1, false},
		{"1.0.0-alpha.beta", "1.0.0-beta", -1, false},
		{"1.0.0-2", "1.0.0-10", -1, false},
		{"1.0.0+build", "1.0.0", 0, false},
		{"banana", "1.0.0", 0, true},
		{"1.0.0-", "1.0.0", 0, true},
	} {
		got, err := SemverCompare(tc.a, tc.b)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("SemverCompare(%q, %q) = %d, %v; want %d, err %v", tc.a, tc.b, got, err, tc.want, tc.err)
		}
	}
}

func TestCompileRule(t *testing.T) {
	for _, tc := range []struct {
		name, expr string
		line, col  int
	}{
		{"ok", `principal.attributes["region"] == "eu" && semver_at_least(principal.firmware, "2.1.0")`, 0, 0},
		{"params", `params.vin.startsWith("WVW")`, 0, 0},
		{"misspelt field", `principal.atributes["region"] == "eu"`, 1, 10},
		{"type mismatch", `principal.id == 1`, 1, 14},
		{"not bool", `principal.id`, 1, 1},
		{"syntax", "principal.id ==\n  ", 2, 3},
		{"unknown variable", `vehicle.vin == "x"`, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileRule(tc.expr)
			if tc.line == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			re, ok := err.(*RuleError)
			if !ok {
				t.Fatalf("want *RuleError, got %v", err)
			}
			if re.Line != tc.line || re.Column != tc.col {
				t.Fatalf("error at %d:%d (%s), want %d:%d", re.Line, re.Column, re.Message, tc.line, tc.col)
			}
		})
	}
}
