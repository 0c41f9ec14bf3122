package lifecycle

import (
	"strings"
	"testing"
	"time"
)

func TestParseWindow(t *testing.T) {
	cases := []struct {
		name, in string
		want     time.Duration
		err      string
	}{
		{"days", "30d", 30 * 24 * time.Hour, ""},
		{"hours", "36h", 36 * time.Hour, ""},
		{"empty is the default", "", 0, ""},
		{"zero is the default", "0", 0, ""},
		{"fractional days", "1.5d", 0, "whole number of days"},
		{"signed days", "+3d", 0, "whole number of days"},
		{"words", "a month", 0, "such as 30d"},
		{"huge days", "999999999999d", 0, "whole number of days"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseWindow(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseWindow(%q) = %v, %v; want error %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseWindow(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			if got > 0 {
				if back, err := ParseWindow(FormatWindow(got)); err != nil || back != got {
					t.Fatalf("round trip of %v: %v %v", got, back, err)
				}
			}
		})
	}
}

// FuzzParseWindow: any input gives a window or an error, never a panic,
// and a window formats back to itself.
func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"30d", "36h", "", "0", "1.5d", "-1d", "90m", "1h30m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseWindow(s)
		if err != nil || d <= 0 {
			return
		}
		if back, err := ParseWindow(FormatWindow(d)); err != nil || back != d {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, d, FormatWindow(d), back, err)
		}
	})
}
