package diff

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/internal/spec"
)

var update = flag.Bool("update", false, "rewrite testdata/*/want.golden from the current output")

// TestGolden compares testdata/<case>/old.yaml with new.yaml and checks the
// rendered changes against want.golden. Run with -update to rewrite the
// goldens, then review them with git diff.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 8 {
		t.Fatalf("only %d golden cases", len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			old := parseFile(t, filepath.Join(dir, "old.yaml"))
			new := parseFile(t, filepath.Join(dir, "new.yaml"))
			got := render(Compare(old, new))
			golden := filepath.Join(dir, "want.golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("changes differ from %s (run with -update to accept)\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

// render is the golden form: one Change.String per line.
func render(cs []Change) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.String())
		b.WriteByte('\n')
	}
	return b.String()
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
	d, err := spec.Parse([]byte(content))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return d
}

// TestSelf checks that every document we have compares equal to itself.
func TestSelf(t *testing.T) {
	var files []string
	for _, p := range []string{"testdata/*/*.yaml", "../testdata/*", "../lint/testdata/*/*.yaml"} {
		fs, err := filepath.Glob(p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fs...)
	}
	for _, f := range files {
		d := parseFile(t, f)
		if cs := Compare(d, d); len(cs) != 0 {
			t.Errorf("%s differs from itself:\n%s", f, render(cs))
		}
	}
}

func TestAdditiveOnlyIsNotBreaking(t *testing.T) {
	cs := Compare(parseFile(t, "testdata/additive-only/old.yaml"), parseFile(t, "testdata/additive-only/new.yaml"))
	if len(cs) == 0 || Breaking(cs) {
		t.Errorf("additive change: Breaking = %v, changes:\n%s", Breaking(cs), render(cs))
	}
	if RequiresMajor(cs, "v1", "v1") {
		t.Error("additive change requires a major version")
	}
}

func TestFormatChanged(t *testing.T) {
	o := parseFile(t, "testdata/operation-removed/old.yaml")
	n := parseFile(t, "testdata/asyncapi-channel-removed/new.yaml")
	cs := Compare(o, n)
	if len(cs) != 1 || cs[0].Kind != "format-changed" || !cs[0].Breaking {
		t.Errorf("got %v", cs)
	}
	if Compare(nil, n) != nil || Compare(o, nil) != nil {
		t.Error("a missing document has changes")
	}
}

func TestRequiresMajor(t *testing.T) {
	breaking := []Change{{Kind: "operation-removed", Breaking: true}}
	additive := []Change{{Kind: "operation-added"}}
	tests := []struct {
		name     string
		cs       []Change
		old, new string
		want     bool
	}{
		{name: "breaking, same major", cs: breaking, old: "v1", new: "v1.1", want: true},
		{name: "breaking, semver minor", cs: breaking, old: "1.2.0", new: "1.3.0", want: true},
		{name: "breaking, major bumped", cs: breaking, old: "v1", new: "v2", want: false},
		{name: "breaking, semver major", cs: breaking, old: "1.9.3", new: "2.0.0-beta.1", want: false},
		{name: "breaking, v-less and v", cs: breaking, old: "2.1", new: "v2", want: true},
		{name: "breaking, 0.x is not exempt", cs: breaking, old: "0.1.0", new: "0.2.0", want: true},
		{name: "breaking, unreadable label", cs: breaking, old: "latest", new: "v2", want: true},
		{name: "additive, same major", cs: additive, old: "v1", new: "v1", want: false},
		{name: "no changes", old: "v1", new: "v1", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := RequiresMajor(tc.cs, tc.old, tc.new); got != tc.want {
				t.Errorf("RequiresMajor(%q, %q) = %v, want %v", tc.old, tc.new, got, tc.want)
			}
		})
	}
}

func TestSorted(t *testing.T) {
	cs := Compare(parseFile(t, "testdata/security-changed/old.yaml"), parseFile(t, "testdata/security-changed/new.yaml"))
	if !sorted(cs) {
		t.Errorf("not sorted:\n%s", render(cs))
	}
}

// sorted reports whether breaking changes come first, then by pointer.
func sorted(cs []Change) bool {
	for i := 1; i < len(cs); i++ {
		a, b := cs[i-1], cs[i]
		if (!a.Breaking && b.Breaking) || (a.Breaking == b.Breaking && a.Pointer > b.Pointer) {
			return false
		}
	}
	return true
}
