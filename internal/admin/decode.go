package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds ordinary admin request bodies; bodies that carry spec
// documents get maxSpecBody.
const (
	maxBody     = 1 << 20
	maxSpecBody = 5 << 20
	maxErrors   = 20
)

// decodeJSON reads r's body (at most limit bytes) into v, strictly: syntax
// errors carry line and column, and unknown fields and wrong types are
// reported with the JSON pointer of every offending member, not just the
// first, so a client can fix its request in one round.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type", "send application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return err
	}
	return decodeBytes(body, v)
}

// decodeBytes is decodeJSON without the HTTP parts; the fuzz target drives it.
func decodeBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("the request body is empty; a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return syntaxProblem(body, err)
	}
	if dec.More() {
		line, col := position(body, dec.InputOffset())
		return badRequest("unexpected data after the JSON value", FieldError{Pointer: "", Detail: "trailing data", Line: line, Column: col})
	}
	var errs []FieldError
	check(generic, reflect.TypeOf(v).Elem(), "", &errs)
	if len(errs) > 0 {
		return badRequest(fmt.Sprintf("%d problem(s) in the request body", len(errs)), errs...)
	}
	if err := json.Unmarshal(body, v); err != nil {
		// check mirrors encoding/json; anything it missed still gets a
		// located answer.
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return badRequest("wrong type", FieldError{Pointer: "/" + strings.ReplaceAll(te.Field, ".", "/"), Detail: "expected " + te.Type.String()})
		}
		return badRequest(err.Error())
	}
	return nil
}

func syntaxProblem(body []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(body, se.Offset)
		return badRequest("malformed JSON: "+se.Error(), FieldError{Pointer: "", Detail: se.Error(), Line: line, Column: col})
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		line, col := position(body, int64(len(body)))
		return badRequest("malformed JSON: unexpected end of input", FieldError{Pointer: "", Detail: "unexpected end of input", Line: line, Column: col})
	}
	return badRequest("malformed JSON: " + err.Error())
}

// position converts a byte offset into a 1-based line and column.
func position(b []byte, off int64) (line, col int) {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	line, col = 1, 1
	for _, c := range b[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

var (
	timeType = reflect.TypeOf(time.Time{})
	rawType  = reflect.TypeOf(json.RawMessage{})
	durType  = reflect.TypeOf(duration(0))
)

func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// check compares a generic JSON value with the Go type it will decode into.
func check(val any, t reflect.Type, ptr string, errs *[]FieldError) {
	if len(*errs) >= maxErrors {
		return
	}
	add := func(detail string) { *errs = append(*errs, FieldError{Pointer: ptr, Detail: detail}) }
	for t.Kind() == reflect.Pointer {
		if val == nil {
			return
		}
		t = t.Elem()
	}
	if val == nil {
		return // null leaves the zero value, as encoding/json does
	}
	switch t {
	case rawType:
		return
	case timeType:
		s, ok := val.(string)
		if !ok {
			add("expected an RFC 3339 timestamp string")
		} else if _, err := time.Parse(time.RFC3339, s); err != nil {
			add("expected an RFC 3339 timestamp such as 2027-01-31T00:00:00Z")
		}
		return
	case durType:
		s, ok := val.(string)
		if !ok {
			add("expected a duration string such as \"720h\"")
		} else if _, err := time.ParseDuration(s); err != nil {
			add("invalid duration: " + err.Error())
		}
		return
	}
	switch t.Kind() {
	case reflect.Interface:
		return
	case reflect.String:
		if _, ok := val.(string); !ok {
			add("expected a string, got " + kindOf(val))
		}
	case reflect.Bool:
		if _, ok := val.(bool); !ok {
			add("expected a boolean, got " + kindOf(val))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := val.(json.Number)
		if !ok {
			add("expected an integer, got " + kindOf(val))
		} else if _, err := strconv.ParseInt(string(n), 10, 64); err != nil {
			add("expected an integer in range")
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := val.(json.Number); !ok {
			add("expected a number, got " + kindOf(val))
		}
	case reflect.Slice, reflect.Array:
		arr, ok := val.([]any)
		if !ok {
			add("expected an array, got " + kindOf(val))
			return
		}
		for i, e := range arr {
			check(e, t.Elem(), ptr+"/"+strconv.Itoa(i), errs)
		}
	case reflect.Map:
		obj, ok := val.(map[string]any)
		if !ok {
			add("expected an object, got " + kindOf(val))
			return
		}
		for k, e := range obj {
			check(e, t.Elem(), ptr+"/"+escape(k), errs)
		}
	case reflect.Struct:
		obj, ok := val.(map[string]any)
		if !ok {
			add("expected an object, got " + kindOf(val))
			return
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				*errs = append(*errs, FieldError{Pointer: ptr + "/" + escape(k), Detail: "unknown field"})
				continue
			}
			check(obj[k], ft, ptr+"/"+escape(k), errs)
		}
	}
}

func kindOf(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "null"
}

// jsonFields maps JSON member names to field types, following embedded
// structs the way encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// duration is a time.Duration that decodes from strings such as "720h".
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = duration(v)
	return err
}
