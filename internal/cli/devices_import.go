package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"
)

// deviceProgressRows is the size of import above which the upload's
// progress is reported on stderr.
const deviceProgressRows = 5000

// deviceImport is a device import file, read and scanned locally.
type deviceImport struct {
	name  string // file name for messages; "stdin" for -
	csv   bool
	data  []byte
	lines []int // line of each data row (index: the N of /rows/N)
}

func (a *app) devicesImportCmd() *cobra.Command {
	var file, format string
	var partial bool
	cmd := &cobra.Command{
		Use:   "import -f FILE.csv|FILE.json [--partial]",
		Short: "Register many devices from a CSV or JSON file",
		Long: `Register devices from a file, in one request:

  CSV   a header row, then one device per line. Columns: id (required),
        model, serial, owners (separated by ';' or spaces), status,
        firmware, and attr.NAME for each attribute.
  JSON  an array of {"id": ..., "model": ..., "owners": [...],
        "attributes": {...}, ...} objects.

The server checks every row. If any row is bad, nothing is imported and
every bad row is listed ("row N" counts data rows from 0, at its line in the
file); with --partial the good rows are imported and the bad ones listed.
For files of more than 5000 rows the upload's progress goes to stderr.`,
		Example: "  fleetgate devices import -f meters.csv\n  fleetgate devices import -f meters.json --partial",
		Args:    cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			imp, err := readDeviceImport(file, format, s.cmd.InOrStdin())
			if err != nil {
				return err
			}
			return imp.send(ctx, s, partial)
		}),
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "CSV or JSON file, - for stdin (required)")
	cmd.Flags().StringVar(&format, "format", "", "csv or json (default: from the file name's extension)")
	cmd.Flags().BoolVar(&partial, "partial", false, "import the valid rows even when some rows are bad")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// readDeviceImport reads the file and finds its rows and their lines. Only
// the syntax is checked here (so that a broken file is reported at its
// line without being uploaded); the rows' content is the server's to judge.
func readDeviceImport(path, format string, stdin io.Reader) (*deviceImport, error) {
	imp := &deviceImport{name: path}
	var r io.Reader
	if path == "-" {
		imp.name, r = "stdin", stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("reading devices: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxImportFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", imp.name, err)
	}
	if len(data) > maxImportFile {
		return nil, fmt.Errorf("%s is larger than %d bytes; split it", imp.name, maxImportFile)
	}
	imp.data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if format == "" {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".csv":
			format = "csv"
		case ".json":
			format = "json"
		default:
			return nil, fmt.Errorf("cannot tell the format of %s: name it .csv or .json, or give --format", imp.name)
		}
	}
	switch format {
	case "csv":
		imp.csv = true
		err = imp.scanCSV()
	case "json":
		err = imp.scanJSON()
	default:
		return nil, fmt.Errorf("invalid --format %q: want csv or json", format)
	}
	if err != nil {
		return nil, err
	}
	if len(imp.lines) == 0 {
		return nil, fmt.Errorf("%s holds no devices", imp.name)
	}
	return imp, nil
}

func (imp *deviceImport) scanCSV() error {
	rd := csv.NewReader(bytes.NewReader(imp.data))
	rd.FieldsPerRecord = -1 // a short row is the server's to report, with the others
	rd.ReuseRecord = true
	for i := 0; ; i++ {
		_, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return csvError(imp.name, err)
		}
		if i > 0 { // the header is not a row
			line, _ := rd.FieldPos(0)
			imp.lines = append(imp.lines, line)
		}
	}
	return nil
}

func (imp *deviceImport) scanJSON() error {
	p := &jsonParser{dec: json.NewDecoder(bytes.NewReader(imp.data)), data: imp.data}
	for i, c := range imp.data {
		if c == '\n' {
			p.lines = append(p.lines, i+1)
		}
	}
	fail := func(err error) error { return fmt.Errorf("%s:%v", imp.name, p.fail(p.start(), err)) }
	first := p.start()
	tok, err := p.dec.Token()
	if err != nil {
		return fail(err)
	}
	if tok != json.Delim('[') {
		line, col := p.pos(first)
		return fmt.Errorf("%s:%d:%d: want an array of devices", imp.name, line, col)
	}
	for p.dec.More() {
		line, _ := p.pos(p.start())
		var skip json.RawMessage
		if err := p.dec.Decode(&skip); err != nil {
			return fail(err)
		}
		imp.lines = append(imp.lines, line)
	}
	if _, err := p.dec.Token(); err != nil { // ']'
		return fail(err)
	}
	off := p.start()
	if _, err := p.dec.Token(); !errors.Is(err, io.EOF) {
		line, col := p.pos(off)
		return fmt.Errorf("%s:%d:%d: unexpected data after the devices", imp.name, line, col)
	}
	return nil
}

// deviceImportReport is the server's answer to an import.
type deviceImportReport struct {
	Imported int            `json:"imported"`
	Failed   int            `json:"failed"`
	Errors   []ProblemField `json:"errors"`
}

// send uploads the file in one request: the server imports all or nothing
// (or, with partial, every good row), which chunking would break.
func (imp *deviceImport) send(ctx context.Context, s *session, partial bool) error {
	path := "/devices/import"
	if partial {
		path += "?partial=true"
	}
	ct := "application/json"
	if imp.csv {
		ct = "text/csv; charset=utf-8"
	}
	total := len(imp.lines)
	var body io.Reader = bytes.NewReader(imp.data)
	var prog *uploadProgress
	if total > deviceProgressRows {
		prog = &uploadProgress{r: body, w: s.stderr, total: int64(len(imp.data)), rows: total, name: imp.name, next: 10}
		body = prog
	}
	var raw json.RawMessage
	err := s.client.Do(ctx, http.MethodPost, path, &RawBody{ContentType: ct, Body: body, Length: int64(len(imp.data))}, &raw)
	prog.stop()
	if err != nil {
		return imp.failed(err, partial)
	}
	var rep deviceImportReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("decoding answer to POST %s: %w", path, err)
	}
	if s.json {
		return printJSON(s.stdout, raw)
	}
	for _, e := range rep.Errors {
		fmt.Fprintln(s.stderr, imp.describe(e))
	}
	msg := fmt.Sprintf("imported %d of %d devices from %s", rep.Imported, total, sanitize(imp.name))
	if rep.Failed > 0 {
		msg += fmt.Sprintf("; %s skipped (listed above)", plural(rep.Failed, "bad row"))
	}
	_, err = fmt.Fprintln(s.stdout, msg)
	return err
}

// describe renders one field error of the server: /rows/N/field becomes
// "FILE:LINE: row N: field: detail".
func (imp *deviceImport) describe(e ProblemField) string {
	loc, what := imp.name, strings.TrimPrefix(e.Pointer, "/")
	line := e.Line
	if rest, ok := strings.CutPrefix(e.Pointer, "/rows/"); ok {
		idx, field, _ := strings.Cut(rest, "/")
		if n, err := strconv.Atoi(idx); err == nil && n >= 0 {
			if line == 0 && n < len(imp.lines) {
				line = imp.lines[n]
			}
			what = "row " + idx
			if field != "" {
				what += ": " + strings.NewReplacer("~1", "/", "~0", "~").Replace(field)
			}
		}
	}
	if line > 0 {
		loc += ":" + strconv.Itoa(line)
	}
	if what == "" {
		return sanitize(loc + ": " + e.Detail)
	}
	return sanitize(loc + ": " + what + ": " + e.Detail)
}

// importFailed is a rejected import: the server's problem, with every bad
// row rendered at its place in the file, and what was imported.
type importFailed struct {
	pe    *ProblemError
	rows  []string
	total int
	hint  string
}

func (e *importFailed) Error() string {
	pe := *e.pe
	pe.Errors = nil
	var b strings.Builder
	b.WriteString(pe.Error())
	for _, r := range e.rows {
		b.WriteString("\n  " + r)
	}
	fmt.Fprintf(&b, "\nimported 0 of %d devices%s", e.total, e.hint)
	return b.String()
}

func (e *importFailed) Unwrap() error { return e.pe }

func (imp *deviceImport) failed(err error, partial bool) error {
	var pe *ProblemError
	if !errors.As(err, &pe) || len(pe.Errors) == 0 || pe.Status >= 500 {
		return err
	}
	f := &importFailed{pe: pe, total: len(imp.lines)}
	for _, fe := range pe.Errors {
		f.rows = append(f.rows, imp.describe(fe))
	}
	if !partial && pe.Status == http.StatusUnprocessableEntity {
		f.hint = "; fix the rows above, or add --partial to import the valid ones"
	}
	return f
}

// uploadProgress reports, on stderr, how much of the body the transport
// has read: every 10%, then when the upload is complete. The transport may
// read in another goroutine, even after Do returned: stop ends the reports.
type uploadProgress struct {
	r           io.Reader
	w           io.Writer
	name        string
	total, sent int64
	rows        int
	next        int64 // next percentage to report
	mu          sync.Mutex
	stopped     bool
}

func (p *uploadProgress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return n, err
	}
	p.sent += int64(n)
	for p.next < 100 && p.sent*100 >= p.next*p.total {
		fmt.Fprintf(p.w, "uploading %s: %d%%\n", sanitize(p.name), p.next)
		p.next += 10
	}
	if p.next == 100 && p.sent >= p.total {
		fmt.Fprintf(p.w, "uploaded %s (%d rows); the server is importing them...\n", sanitize(p.name), p.rows)
		p.next = 101
	}
	return n, err
}

func (p *uploadProgress) stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
}
