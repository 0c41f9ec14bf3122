package credential

import "fmt"

// Stable reasons carried by *Error. They are part of the API: the gateway
// maps them to metrics labels, audit records and client-facing error codes,
// so they must never be renamed.
const (
	ReasonMalformed           = "malformed"
	ReasonBadSignature        = "bad_signature"
	ReasonUnknownKey          = "unknown_key"
	ReasonExpired             = "expired"
	ReasonNotYetValid         = "not_yet_valid"
	ReasonWrongIssuer         = "wrong_issuer"
	ReasonWrongAudience       = "wrong_audience"
	ReasonAlgorithmNotAllowed = "algorithm_not_allowed"
	ReasonMissingExp          = "missing_exp"
)

// Error is the only error type Verify returns. Reason is one of the Reason
// constants; Detail is a human-readable hint for operators. Detail never
// contains key material, and is not stable: match on Reason.
type Error struct {
	Reason string
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return "credential: " + e.Reason
	}
	return "credential: " + e.Reason + ": " + e.Detail
}

func verr(reason, detail string) *Error { return &Error{Reason: reason, Detail: detail} }

// ConfigError reports an invalid JWTConfig. Field names the offending field
// (for example "ClockSkew"), so that the config loader can prefix it with the
// path of the application being configured.
type ConfigError struct {
	Field   string
	Problem string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("credential: JWTConfig.%s: %s", e.Field, e.Problem)
}

func cfgErr(field, format string, args ...any) *ConfigError {
	return &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)}
}
