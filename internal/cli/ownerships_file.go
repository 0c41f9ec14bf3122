package cli

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// importRow is one relation of an import file and the line it is on.
type importRow struct {
	relation
	line int
}

// size is about the length of the row's JSON in a request.
func (r importRow) size() int {
	b, _ := json.Marshal(r.relation)
	return len(b) + 1
}

// maxImportFile bounds an import file held in memory.
const maxImportFile = 1 << 30

// The server's rules for a relation, checked here so that a bad row is
// reported with its line before anything is sent (the server would reject
// the whole chunk, and name the row only by its index in it).
var (
	subjectRe = regexp.MustCompile(`^(user|app|device):[A-Za-z0-9._@:-]{1,200}$`)
	objTypeRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
)

func (r *relation) problems() []string {
	var out []string
	if !subjectRe.MatchString(r.Subject) {
		out = append(out, fmt.Sprintf("subject %q: want user:NAME, app:NAME or device:ID (letters, digits and ._@:- only)", r.Subject))
	}
	if !objTypeRe.MatchString(r.ObjectType) {
		out = append(out, fmt.Sprintf("object_type %q: want a lowercase type such as vehicle or device-model", r.ObjectType))
	}
	if r.ObjectID == "" || len(r.ObjectID) > 256 {
		out = append(out, fmt.Sprintf("object_id %q: want 1 to 256 bytes", truncate(r.ObjectID, 40)))
	}
	return out
}

// loadRelations reads and checks an import file. It returns every row, or
// every problem found (as name:line: message), never some of the rows.
func loadRelations(path, format string, stdin io.Reader) ([]importRow, string, error) {
	name := path
	var r io.Reader
	if path == "-" {
		name, r = "stdin", stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, name, fmt.Errorf("reading relations: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxImportFile+1))
	if err != nil {
		return nil, name, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > maxImportFile {
		return nil, name, fmt.Errorf("%s is larger than %d bytes; split it", name, maxImportFile)
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if format == "" {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".csv":
			format = "csv"
		case ".json":
			format = "json"
		default:
			return nil, name, fmt.Errorf("cannot tell the format of %s: name it .csv or .json, or give --format", name)
		}
	}
	set := &relationSet{name: name, seen: map[relation]int{}}
	switch format {
	case "csv":
		err = readCSVRelations(set, data)
	case "json":
		err = readJSONRelations(set, data)
	default:
		return nil, name, fmt.Errorf("invalid --format %q: want csv or json", format)
	}
	if err != nil {
		return nil, name, err
	}
	if err := set.errs.err(name); err != nil {
		return nil, name, err
	}
	if len(set.rows) == 0 {
		return nil, name, fmt.Errorf("%s holds no relations", name)
	}
	return set.rows, name, nil
}

// relationSet gathers the rows of a file in order, checking each as it
// comes so that problems are reported in line order.
type relationSet struct {
	name string
	rows []importRow
	seen map[relation]int // line of each relation
	errs rowErrors
}

func (s *relationSet) bad(line int, format string, args ...any) {
	s.errs.add(s.name, line, format, args...)
}

func (s *relationSet) add(row importRow) {
	ok := true
	for _, p := range row.problems() {
		s.bad(row.line, "%s", p)
		ok = false
	}
	if first, dup := s.seen[row.relation]; dup {
		s.bad(row.line, "the same relation as line %d", first)
		ok = false
	}
	if ok {
		s.seen[row.relation] = row.line
		s.rows = append(s.rows, row)
	}
}

// rowErrors collects the problems of an import file: the first
// maxFleetErrors in full, the rest counted.
type rowErrors struct {
	msgs  []string
	total int
	lines map[int]bool
}

func (e *rowErrors) add(name string, line int, format string, args ...any) {
	if e.lines == nil {
		e.lines = map[int]bool{}
	}
	e.lines[line] = true
	e.total++
	if len(e.msgs) < maxFleetErrors {
		e.msgs = append(e.msgs, fmt.Sprintf("%s:%d: %s", sanitize(name), line, sanitize(fmt.Sprintf(format, args...))))
	}
}

func (e *rowErrors) err(name string) error {
	if len(e.lines) == 0 {
		return nil
	}
	more := ""
	if e.total > len(e.msgs) {
		more = fmt.Sprintf(" (%d problems, the first %d shown)", e.total, len(e.msgs))
	}
	return fmt.Errorf("%s\n%s: %s%s; nothing was sent", strings.Join(e.msgs, "\n"), sanitize(name), plural(len(e.lines), "bad row"), more)
}

var relationColumns = []string{"subject", "object_type", "object_id"}

func readCSVRelations(set *relationSet, data []byte) error {
	name := set.name
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1 // checked below, so that every bad row is reported
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s is empty: want a header row %s", name, strings.Join(relationColumns, ","))
	}
	if err != nil {
		return csvError(name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if _, dup := col[h]; dup || !isRelationColumn(h) {
			return fmt.Errorf("%s:1: column %q: want a header row naming the columns %s once each", name, sanitize(h), strings.Join(relationColumns, ", "))
		}
		col[h] = i
	}
	if len(col) != len(relationColumns) {
		return fmt.Errorf("%s:1: the header row must name the columns %s", name, strings.Join(relationColumns, ", "))
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			// A quoting error leaves the reader unsure where records
			// start; report what was found so far and stop.
			return errors.Join(set.errs.err(name), csvError(name, err))
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(header) {
			set.bad(line, "%d fields, want %d (%s)", len(rec), len(header), strings.Join(header, ","))
			continue
		}
		set.add(importRow{relation{
			Subject:    strings.TrimSpace(rec[col["subject"]]),
			ObjectType: strings.TrimSpace(rec[col["object_type"]]),
			ObjectID:   strings.TrimSpace(rec[col["object_id"]]),
		}, line})
	}
}

func isRelationColumn(h string) bool {
	for _, c := range relationColumns {
		if h == c {
			return true
		}
	}
	return false
}

func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%d:%d: %v", name, pe.Line, pe.Column, pe.Err)
	}
	return fmt.Errorf("%s: %v", name, err)
}

// readJSONRelations streams the array (or {"items": [...]} envelope) so
// that a large file costs one decoded row at a time, and notes each row's
// line.
func readJSONRelations(set *relationSet, data []byte) error {
	name := set.name
	p := &jsonParser{dec: json.NewDecoder(bytes.NewReader(data)), data: data}
	for i, c := range data {
		if c == '\n' {
			p.lines = append(p.lines, i+1)
		}
	}
	fail := func(err error) error { return fmt.Errorf("%s:%v", name, p.fail(p.start(), err)) }
	at := func(off int64, msg string) error {
		line, col := p.pos(off)
		return fmt.Errorf("%s:%d:%d: %s", name, line, col, msg)
	}
	first := p.start()
	tok, err := p.dec.Token()
	if err != nil {
		return fail(err)
	}
	envelope := tok == json.Delim('{')
	if envelope {
		// The envelope: "items" is the array; "next" (a cursor) is ignored.
		found := false
		for !found {
			if !p.dec.More() {
				return at(p.start(), `no "items" array in the object`)
			}
			koff := p.start()
			k, err := p.dec.Token()
			if err != nil {
				return fail(err)
			}
			switch k {
			case "items":
				if tok, err = p.dec.Token(); err != nil {
					return fail(err)
				}
				found = true
			case "next":
				var skip json.RawMessage
				if err := p.dec.Decode(&skip); err != nil {
					return fail(err)
				}
			default:
				return at(koff, fmt.Sprintf("unexpected member %q: want an array of relations or {\"items\": [...]}", k))
			}
		}
	}
	if tok != json.Delim('[') {
		return at(first, "want an array of relations")
	}
	for p.dec.More() {
		line, _ := p.pos(p.start())
		var m map[string]json.RawMessage
		if err := p.dec.Decode(&m); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				set.bad(line, "want an object with subject, object_type and object_id, not a JSON %s", te.Value)
				continue
			}
			return fail(err)
		}
		var r relation
		bad := false
		for _, k := range sortedKeys(m) {
			v := m[k]
			var dst *string
			switch k {
			case "subject":
				dst = &r.Subject
			case "object_type":
				dst = &r.ObjectType
			case "object_id":
				dst = &r.ObjectID
			case "tenant", "created_at": // as ownerships list prints them
				continue
			default:
				set.bad(line, "unknown member %q (want subject, object_type, object_id)", k)
				bad = true
				continue
			}
			if err := json.Unmarshal(v, dst); err != nil {
				set.bad(line, "%s must be a string", k)
				bad = true
			}
		}
		if !bad {
			set.add(importRow{r, line})
		}
	}
	if _, err := p.dec.Token(); err != nil { // ']'
		return fail(err)
	}
	for envelope && p.dec.More() {
		koff := p.start()
		k, err := p.dec.Token()
		if err != nil {
			return fail(err)
		}
		var skip json.RawMessage
		if k != "next" {
			return at(koff, fmt.Sprintf("unexpected member %q after the items", k))
		}
		if err := p.dec.Decode(&skip); err != nil {
			return fail(err)
		}
	}
	if envelope {
		if _, err := p.dec.Token(); err != nil { // '}'
			return fail(err)
		}
	}
	off := p.start()
	if _, err := p.dec.Token(); !errors.Is(err, io.EOF) {
		return at(off, "unexpected data after the relations")
	}
	return nil
}
