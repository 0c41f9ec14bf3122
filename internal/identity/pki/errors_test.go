package pki

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorMatching(t *testing.T) {
	err := fmt.Errorf("enrol: %w", perr(CodeTooLarge, "CSR exceeds 16384 bytes"))
	if !errors.Is(err, &Error{Code: CodeTooLarge}) || errors.Is(err, &Error{Code: CodeMalformedCSR}) {
		t.Fatal("errors.Is does not match on Code")
	}
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"with detail", &Error{Code: CodeTooLarge, Detail: "x"}, "pki: too-large: x"},
		{"code only", &Error{Code: CodeBadSignature}, "pki: bad-signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Fatalf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
