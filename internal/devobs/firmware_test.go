package devobs

import (
	"regexp"
	"strings"
	"testing"
)

// semverRe is the regular expression semver.org publishes for 2.0.0: the
// reference ValidFirmware must agree with (below the length cap).
var semverRe = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

func TestValidFirmware(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"release", "1.4.2", true},
		{"zeros", "0.0.0", true},
		{"pre-release", "1.0.0-rc.1", true},
		{"pre-release with hyphen", "1.0.0-alpha-beta.x-y", true},
		{"build metadata", "1.0.0+20261130.sha-5114f85", true},
		{"build with leading zero", "1.0.0+001", true},
		{"pre and build", "10.20.30-beta.11+exp.sha.5114f85", true},
		{"alphanumeric pre with leading zero", "1.0.0-0a", true},
		{"empty", "", false},
		{"two parts", "1.4", false},
		{"four parts", "1.4.2.1", false},
		{"v prefix", "v1.4.2", false},
		{"leading zero", "01.4.2", false},
		{"numeric pre-release leading zero", "1.0.0-01", false},
		{"empty pre-release", "1.0.0-", false},
		{"empty pre-release identifier", "1.0.0-a..b", false},
		{"empty build", "1.0.0+", false},
		{"space", "1.4.2 ", false},
		{"bad character", "1.4.2-rc_1", false},
		{"unicode digit", "1.4.٢", false},
		{"too long", "1.0.0-" + strings.Repeat("a", MaxFirmwareLen), false},
		{"negative", "-1.0.0", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidFirmware(tc.in); got != tc.want {
				t.Fatalf("ValidFirmware(%q) = %v, want %v", tc.in, got, tc.want)
			}
			if len(tc.in) <= MaxFirmwareLen && semverRe.MatchString(tc.in) != tc.want {
				t.Fatalf("the table disagrees with semver.org's expression on %q", tc.in)
			}
		})
	}
}

func TestFirmwareFromUsername(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"none", "meter-17", ""},
		{"suffix", "meter-17;fw=1.4.2", "1.4.2"},
		{"only the suffix", ";fw=2.0.0", "2.0.0"},
		{"last one wins", "a;fw=1.0.0;fw=1.0.1", "1.0.1"},
		{"empty value", "meter;fw=", ""},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := FirmwareFromUsername(tc.in); got != tc.want {
				t.Fatalf("FirmwareFromUsername(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzValidFirmware checks the hand-written validator against semver.org's
// regular expression on arbitrary input, and that it never panics.
func FuzzValidFirmware(f *testing.F) {
	for _, s := range []string{"1.4.2", "1.0.0-rc.1+b.2", "01.0.0", "1.0.0-", "1..0", "1.0.0-0a.01", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ValidFirmware(s)
		want := len(s) <= MaxFirmwareLen && semverRe.MatchString(s)
		if got != want {
			t.Fatalf("ValidFirmware(%q) = %v, semver.org's expression says %v", s, got, want)
		}
	})
}

// FuzzFirmwareFromUsername: the result is always a suffix of the input
// that follows the marker, and never panics.
func FuzzFirmwareFromUsername(f *testing.F) {
	for _, s := range []string{"meter;fw=1.0.0", ";fw=", "x", ";fw=;fw=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := FirmwareFromUsername(s)
		if got != "" && (!strings.HasSuffix(s, usernameMarker+got) || strings.Contains(got, usernameMarker)) {
			t.Fatalf("FirmwareFromUsername(%q) = %q", s, got)
		}
	})
}
