package policy

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"

	"github.com/fleetgate/fleetgate/internal/validate"
)

// PrincipalView is what CEL rules see as `principal`. Fields are typed, so
// a misspelt field (principal.atributes) is a compile error at submit time,
// not a silent false at request time.
type PrincipalView struct {
	Kind       string            `cel:"kind"`
	Tenant     string            `cel:"tenant"`
	ID         string            `cel:"id"`
	App        string            `cel:"app"`
	Device     string            `cel:"device"`
	Model      string            `cel:"model"`
	Firmware   string            `cel:"firmware"`
	Subject    string            `cel:"subject"`
	Attributes map[string]string `cel:"attributes"`
	Claims     map[string]any    `cel:"claims"`
}

// RequestView is `request` in CEL rules: protocol-neutral facts.
type RequestView struct {
	Protocol  string `cel:"protocol"`  // "http", "mqtt", "coap"
	Action    string `cel:"action"`    // HTTP/CoAP method, "publish", "subscribe"
	Path      string `cel:"path"`      // HTTP path, MQTT topic, CoAP path
	Operation string `cel:"operation"` // operation id
	API       string `cel:"api"`
	Version   string `cel:"version"`
	ClientIP  string `cel:"client_ip"`
}

// DeviceView is `device` in CEL rules: the calling device, when the
// principal is one (empty strings otherwise).
type DeviceView struct {
	ID         string            `cel:"id"`
	Model      string            `cel:"model"`
	Firmware   string            `cel:"firmware"`
	Attributes map[string]string `cel:"attributes"`
}

var (
	envOnce sync.Once
	envVal  *cel.Env
	envErr  error
)

// celEnv is the one CEL environment: typed inputs and Fleetgate functions.
// It is immutable once built and safe to share.
func celEnv() (*cel.Env, error) {
	envOnce.Do(func() {
		envVal, envErr = cel.NewEnv(
			ext.NativeTypes(reflect.TypeOf(&PrincipalView{}), reflect.TypeOf(&RequestView{}), reflect.TypeOf(&DeviceView{}), ext.ParseStructTags(true)),
			cel.Variable("principal", cel.ObjectType("policy.PrincipalView")),
			cel.Variable("request", cel.ObjectType("policy.RequestView")),
			cel.Variable("device", cel.ObjectType("policy.DeviceView")),
			cel.Variable("params", cel.MapType(cel.StringType, cel.StringType)),
			ext.Strings(),
			// Version strings do not compare as strings ('10.0.0' < '2.1.0'
			// lexically): rules compare firmware with these.
			cel.Function("semver_compare",
				cel.Overload("semver_compare_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.IntType,
					cel.BinaryBinding(func(a, b ref.Val) ref.Val {
						c, err := SemverCompare(string(a.(types.String)), string(b.(types.String)))
						if err != nil {
							return types.NewErr("%v", err)
						}
						return types.Int(c)
					}))),
			cel.Function("semver_at_least",
				cel.Overload("semver_at_least_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
					cel.BinaryBinding(func(a, b ref.Val) ref.Val {
						c, err := SemverCompare(string(a.(types.String)), string(b.(types.String)))
						if err != nil {
							return types.NewErr("%v", err)
						}
						return types.Bool(c >= 0)
					}))),
		)
	})
	return envVal, envErr
}

// RuleError is a rule that does not compile, with its position.
type RuleError struct {
	Line, Column int
	Message      string
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Message)
}

// rule is a compiled CEL rule.
type rule struct {
	expr string
	prg  cel.Program
}

// CompileRule compiles a rule, or returns a *RuleError locating the first
// problem. Rules must evaluate to bool.
func CompileRule(expr string) (*rule, error) {
	env, err := celEnv()
	if err != nil {
		return nil, err
	}
	if len(expr) > 4096 {
		return nil, &RuleError{Line: 1, Column: 1, Message: "rule longer than 4096 characters"}
	}
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		errs := iss.Errors()
		if len(errs) > 0 {
			loc := errs[0].Location
			return nil, &RuleError{Line: loc.Line(), Column: loc.Column() + 1, Message: errs[0].Message}
		}
		return nil, &RuleError{Line: 1, Column: 1, Message: iss.Err().Error()}
	}
	if ast.OutputType() != cel.BoolType {
		return nil, &RuleError{Line: 1, Column: 1, Message: "a rule must evaluate to bool, not " + ast.OutputType().String()}
	}
	// No runtime cost tracker: it doubles the allocations of every
	// evaluation. Rules are bounded instead by their length and by CEL's
	// lack of unbounded loops (comprehensions range over bounded inputs).
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, &RuleError{Line: 1, Column: 1, Message: err.Error()}
	}
	return &rule{expr: expr, prg: prg}, nil
}

// activation resolves the rule inputs lazily: a rule that never reads
// `request` or `params` costs nothing for them, and the principal is
// converted to a CEL value once per principal, not once per request.
type activation struct {
	p      *Principal
	rt     *Route
	r      *Request
	pm     map[string]string // recycled storage for the parameters
	filled bool              // pm holds r.Params
	req    *RequestView
	in     validate.Input // storage for the validator's input
}

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "principal":
		return a.p.celValue(), true
	case "request":
		if a.req == nil {
			a.req = requestView(a.rt, a.r)
		}
		return a.req, true
	case "device":
		return deviceView(a.p), true
	case "params":
		return a.paramMap(), true
	}
	return nil, false
}

// celValue converts the principal's view to a CEL value once; principals
// from stored credentials are shared by every request presenting them.
func (p *Principal) celValue() ref.Val {
	p.celOnce.Do(func() {
		env, err := celEnv()
		if err != nil {
			p.cel = types.NewErr("%v", err)
			return
		}
		p.cel = env.CELTypeAdapter().NativeToValue(p.View())
	})
	return p.cel
}

func (a *activation) Parent() interpreter.Activation { return nil }

// paramMap returns the request's parameters by name, shared by the rules
// and the validator.
func (a *activation) paramMap() map[string]string {
	if !a.filled {
		if a.pm == nil {
			a.pm = make(map[string]string, len(a.r.Params))
		}
		for _, p := range a.r.Params {
			a.pm[p.Name] = p.Value
		}
		a.filled = true
	}
	return a.pm
}

var errNotBool = errors.New("rule did not evaluate to bool")

// eval runs the rule; an evaluation error (missing key, bad semver) is a
// denial, never an allow.
func (r *rule) eval(a *activation) (bool, error) {
	out, _, err := r.prg.Eval(a)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, errNotBool
	}
	return bool(b), nil
}

// SemverCompare compares two versions ("1.2.3", "v10.0.0-rc.1") by
// semantic versioning precedence: -1, 0 or 1.
func SemverCompare(a, b string) (int, error) {
	pa, err := parseSemver(a)
	if err != nil {
		return 0, err
	}
	pb, err := parseSemver(b)
	if err != nil {
		return 0, err
	}
	for i := 0; i < 3; i++ {
		if pa.n[i] != pb.n[i] {
			if pa.n[i] < pb.n[i] {
				return -1, nil
			}
			return 1, nil
		}
	}
	switch {
	case pa.pre == pb.pre:
		return 0, nil
	case pa.pre == "":
		return 1, nil // a release ranks above its pre-releases
	case pb.pre == "":
		return -1, nil
	}
	return comparePre(pa.pre, pb.pre), nil
}

type semver struct {
	n   [3]uint64
	pre string
}

func parseSemver(s string) (semver, error) {
	var v semver
	orig := s
	s = strings.TrimPrefix(s, "v")
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i] // build metadata does not affect precedence
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		v.pre, s = s[i+1:], s[:i]
		if v.pre == "" {
			return v, fmt.Errorf("invalid version %q", orig)
		}
	}
	parts := strings.Split(s, ".")
	if len(parts) == 0 || len(parts) > 3 {
		return v, fmt.Errorf("invalid version %q", orig)
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return v, fmt.Errorf("invalid version %q", orig)
		}
		v.n[i] = n
	}
	return v, nil
}

func comparePre(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		an, aerr := strconv.ParseUint(as[i], 10, 64)
		bn, berr := strconv.ParseUint(bs[i], 10, 64)
		switch {
		case aerr == nil && berr == nil:
			if an != bn {
				if an < bn {
					return -1
				}
				return 1
			}
		case aerr == nil:
			return -1 // numeric identifiers rank below alphanumeric ones
		case berr == nil:
			return 1
		default:
			if c := strings.Compare(as[i], bs[i]); c != 0 {
				return c
			}
		}
	}
	switch {
	case len(as) < len(bs):
		return -1
	case len(as) > len(bs):
		return 1
	}
	return 0
}
