package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// sanitize makes server-provided text safe to print on a terminal: control
// characters (escape sequences, newlines that would break a table row) and
// bidirectional overrides (which can make text read differently than it is)
// are shown escaped instead of being interpreted. Names, descriptions,
// reasons and audit details are all user input of some other operator.
func sanitize(s string) string {
	clean := true
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == unicode.ReplacementChar {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == unicode.ReplacementChar:
			b.WriteString(`\ufffd`)
		case r < 0x100 && unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// cell is a table cell: sanitized, and "-" when empty so columns stay
// aligned and an empty value is visibly empty.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return sanitize(s)
}

// fmtTime prints times in UTC, RFC 3339, second precision: unambiguous
// across operators in different zones and sortable.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmtTime(*t)
}

// table writes aligned columns. Every cell goes through cell().
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)}
	fmt.Fprintln(t.tw, strings.Join(headers, "\t"))
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = cell(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// field is one line of a detail view ("Name:  vehicles").
type field struct{ name, value string }

// printFields prints a detail view of one object, aligned on the colon.
func printFields(w io.Writer, fields ...field) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s:\t%s\n", f.name, cell(f.value))
	}
	return tw.Flush()
}

// printJSON pretty-prints v; a json.RawMessage is re-indented as is, so -o
// json shows exactly what the server sent, fields the CLI does not know
// included.
func printJSON(w io.Writer, v any) error {
	var b []byte
	var err error
	if raw, ok := v.(json.RawMessage); ok {
		if len(bytes.TrimSpace(raw)) == 0 {
			return nil
		}
		var buf bytes.Buffer
		err = json.Indent(&buf, raw, "", "  ")
		b = buf.Bytes()
	} else {
		b, err = json.MarshalIndent(v, "", "  ")
	}
	if err != nil {
		return fmt.Errorf("formatting JSON: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// joinStrings joins the string forms of a slice of string-like values.
func joinStrings[S ~string](v []S) string {
	parts := make([]string, len(v))
	for i, s := range v {
		parts[i] = string(s)
	}
	return strings.Join(parts, ",")
}
