package credential

// Claims are the verified claims of a JWT, as decoded by encoding/json
// (numbers are float64, arrays []any, objects map[string]any). A Claims value
// is only ever returned after its signature, issuer, audience and validity
// window were checked. Callers must treat it as read-only.
type Claims map[string]any

// Subject returns the "sub" claim, or "" when it is absent or not a string.
func (c Claims) Subject() string { return c.String("sub") }

// String returns the named claim when it is a string, else "". Absent and
// mistyped claims are deliberately indistinguishable: authorization rules
// that depend on a claim must treat both as "no value".
func (c Claims) String(name string) string {
	s, _ := c[name].(string)
	return s
}
