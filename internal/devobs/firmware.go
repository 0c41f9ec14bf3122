package devobs

import "strings"

// MaxFirmwareLen bounds a reported firmware version: it is stored in the
// registry and shown to CEL rules, so a device cannot make it large.
const MaxFirmwareLen = 64

// FirmwareHeader is the HTTP request header a device reports its firmware
// version in ("Fleetgate-Firmware: 1.4.2").
const FirmwareHeader = "Fleetgate-Firmware"

// FirmwareProperty is the MQTT 5 CONNECT user property a device reports its
// firmware version in.
const FirmwareProperty = "firmware"

// usernameMarker introduces the firmware version at the end of an MQTT
// CONNECT user name ("meter-17;fw=1.4.2"), the way MQTT 3.1.1 clients,
// which have no user properties, report it. The user name is informational
// only for Fleetgate (the credential is the certificate or the password),
// so the suffix takes nothing away from authentication.
const usernameMarker = ";fw="

// ValidFirmware reports whether s is a semantic version as defined by
// semver.org 2.0.0 (MAJOR.MINOR.PATCH, optional -pre.release and +build,
// no leading zeros in numeric identifiers), at most MaxFirmwareLen bytes.
// It allocates nothing: it runs on every request that carries the header.
func ValidFirmware(s string) bool {
	if len(s) == 0 || len(s) > MaxFirmwareLen {
		return false
	}
	core, build, hasBuild := strings.Cut(s, "+")
	if hasBuild && !identifiers(build, false) {
		return false
	}
	core, pre, hasPre := strings.Cut(core, "-")
	if hasPre && !identifiers(pre, true) {
		return false
	}
	for i := 0; i < 3; i++ {
		var part string
		if i < 2 {
			var ok bool
			if part, core, ok = strings.Cut(core, "."); !ok {
				return false
			}
		} else {
			part = core
		}
		if !numeric(part) {
			return false
		}
	}
	return true
}

// numeric: digits only, no leading zero unless it is "0".
func numeric(p string) bool {
	if p == "" || (len(p) > 1 && p[0] == '0') {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// identifiers checks dot-separated pre-release (strict: numeric ones
// without leading zeros) or build identifiers: non-empty, [0-9A-Za-z-].
func identifiers(s string, strict bool) bool {
	for {
		id, rest, more := strings.Cut(s, ".")
		if id == "" {
			return false
		}
		digits := true
		for i := 0; i < len(id); i++ {
			c := id[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				digits = false
			default:
				return false
			}
		}
		if strict && digits && len(id) > 1 && id[0] == '0' {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

// FirmwareFromUsername returns the version an MQTT user name reports
// after its last ";fw=" ("" when it reports none). The value is not
// validated here; Recorder.Seen does it, counting malformed ones.
func FirmwareFromUsername(u string) string {
	i := strings.LastIndex(u, usernameMarker)
	if i < 0 {
		return ""
	}
	return u[i+len(usernameMarker):]
}
