package admin

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/fleetgate/fleetgate/internal/audit"
	"github.com/fleetgate/fleetgate/internal/model"
	"github.com/fleetgate/fleetgate/internal/store"
)

const (
	maxImportRows   = 10000
	maxImportBody   = 8 << 20
	maxImportErrors = 1000
)

// importRow is one decoded row and where it came from. Row is the 0-based
// index among data rows (the JSON array index; for CSV, the header is not a
// row), the N of the /rows/N pointers; Line is the CSV line, 0 for JSON.
type importRow struct {
	Row  int
	Line int
	Body deviceBody
}

// parseImport decodes an import body: a JSON array of device objects
// (application/json) or CSV text with a header row (text/csv). CSV columns
// are id, model, serial, owners (separated by ';' or spaces), status,
// firmware, and attr.<name> for each attribute; unknown columns are
// refused, since a misspelt column would silently drop data. Rows that
// cannot be decoded are reported with their pointer and left out of rows;
// an error is returned only when the body as a whole is unusable.
func parseImport(contentType string, body []byte) ([]importRow, []FieldError, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "", "application/json":
		return parseImportJSON(body)
	case "text/csv":
		return parseImportCSV(body)
	}
	return nil, nil, problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type", "send application/json (an array of devices) or text/csv")
}

func parseImportJSON(body []byte) ([]importRow, []FieldError, error) {
	var raw []json.RawMessage
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil, badRequest("the request body is empty; a JSON array of devices is required")
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, nil, badRequest("the body must be a JSON array of devices", FieldError{Pointer: "", Detail: "expected an array"})
		}
		return nil, nil, syntaxProblem(body, err)
	}
	if len(raw) > maxImportRows {
		return nil, nil, invalid("too many rows", FieldError{Pointer: "/rows", Detail: "at most " + itoa(maxImportRows) + " rows per import"})
	}
	rows := make([]importRow, 0, len(raw))
	var errs []FieldError
	for i, rm := range raw {
		var b deviceBody
		if err := decodeBytes(rm, &b); err != nil {
			var p *Problem
			if !errors.As(err, &p) || len(p.Errors) == 0 {
				errs = append(errs, FieldError{Pointer: rowPtr(i), Detail: "expected a device object"})
				continue
			}
			for _, fe := range p.Errors {
				fe.Pointer, fe.Line, fe.Column = rowPtr(i)+fe.Pointer, 0, 0
				errs = append(errs, fe)
			}
			continue
		}
		rows = append(rows, importRow{Row: i, Body: b})
	}
	return rows, errs, nil
}

func rowPtr(i int) string { return "/rows/" + itoa(i) }

func parseImportCSV(body []byte) ([]importRow, []FieldError, error) {
	rd := csv.NewReader(bytes.NewReader(body))
	rd.FieldsPerRecord = 0 // every row has as many fields as the header
	rd.ReuseRecord = true
	header, err := rd.Read()
	if err != nil {
		if err == io.EOF {
			return nil, nil, badRequest("the CSV body is empty; a header row is required")
		}
		return nil, nil, csvProblem(err)
	}
	cols := make([]string, len(header))
	var herrs []FieldError
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		cols[i] = h
		switch {
		case h == "id" || h == "model" || h == "serial" || h == "owners" || h == "status" || h == "firmware":
		case strings.HasPrefix(h, "attr.") && attrKeyRe.MatchString(h[len("attr."):]):
		default:
			herrs = append(herrs, FieldError{Pointer: "/columns/" + itoa(i), Detail: "unknown column " + quote(h) + "; use id, model, serial, owners, status, firmware or attr.<name>", Line: 1})
			continue
		}
		if seen[h] {
			herrs = append(herrs, FieldError{Pointer: "/columns/" + itoa(i), Detail: "column " + quote(h) + " appears twice", Line: 1})
		}
		seen[h] = true
	}
	if !seen["id"] {
		herrs = append(herrs, FieldError{Pointer: "/columns", Detail: "the id column is required", Line: 1})
	}
	if herrs != nil {
		return nil, nil, invalid("invalid CSV header", herrs...)
	}
	var rows []importRow
	var errs []FieldError
	for i := 0; ; i++ {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
				errs = append(errs, FieldError{Pointer: rowPtr(i), Detail: "expected " + itoa(len(cols)) + " fields, as in the header", Line: pe.StartLine})
				continue
			}
			// Quoting errors leave the reader out of step: give up here.
			return nil, nil, csvProblem(err)
		}
		// FieldPos is only defined after a successful Read.
		line, _ := rd.FieldPos(0)
		if i >= maxImportRows {
			return nil, nil, invalid("too many rows", FieldError{Pointer: "/rows", Detail: "at most " + itoa(maxImportRows) + " rows per import"})
		}
		var b deviceBody
		for j, v := range rec {
			switch c := cols[j]; c {
			case "id":
				b.ID = strings.TrimSpace(v)
			case "model":
				b.Model = v
			case "serial":
				b.Serial = v
			case "owners":
				b.Owners = strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == ' ' })
			case "status":
				b.Status = strings.TrimSpace(v)
			case "firmware":
				b.Firmware = strings.TrimSpace(v)
			default:
				if v == "" {
					continue // an empty cell means "no such attribute"
				}
				if b.Attributes == nil {
					b.Attributes = map[string]string{}
				}
				b.Attributes[c[len("attr."):]] = v
			}
		}
		rows = append(rows, importRow{Row: i, Line: line, Body: b})
	}
	return rows, errs, nil
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

func csvProblem(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return badRequest("malformed CSV: "+pe.Err.Error(), FieldError{Pointer: "", Detail: pe.Err.Error(), Line: pe.Line, Column: pe.Column})
	}
	return badRequest("malformed CSV: " + err.Error())
}

// importReport is the answer of an import.
type importReport struct {
	Imported int          `json:"imported"`
	Failed   int          `json:"failed"`
	Errors   []FieldError `json:"errors"`
}

// importDevices registers many devices in one transaction. Every row is
// validated, against the others (duplicate ids) and against the registry
// (existing ids); with any failure nothing is imported and the answer lists
// every bad row, unless ?partial=true, which imports the good rows and
// reports the bad ones. One audit record describes the whole import.
func (s *Server) importDevices(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(deviceRoles...); err != nil {
		return err
	}
	partial := r.URL.Query().Get("partial")
	if partial != "" && partial != "true" && partial != "false" {
		return badRequest("partial must be true or false", FieldError{Pointer: "/query/partial", Detail: "expected true or false"})
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxImportBody))
	if err != nil {
		return err
	}
	rows, errs, err := parseImport(r.Header.Get("Content-Type"), body)
	if err != nil {
		return err
	}
	failed := map[int]bool{}
	for _, e := range errs {
		failed[rowOf(e.Pointer)] = true
	}
	ids := map[string]int{}
	for i := range rows {
		row := &rows[i]
		rowErrs := row.Body.validate(rowPtr(row.Row))
		if first, dup := ids[row.Body.ID]; dup && row.Body.ID != "" {
			rowErrs = append(rowErrs, FieldError{Pointer: rowPtr(row.Row) + "/id", Detail: "same id as row " + itoa(first)})
		} else {
			ids[row.Body.ID] = row.Row
		}
		for k := range rowErrs {
			rowErrs[k].Line = row.Line
		}
		if rowErrs != nil {
			failed[row.Row] = true
			errs = append(errs, rowErrs...)
		}
	}
	var report importReport
	err = s.mutate(r.Context(), p, func(tx store.Tx, rec *model.AuditRecord) error {
		var created []*model.Device
		for i := range rows {
			row := &rows[i]
			if failed[row.Row] {
				continue
			}
			// Look before inserting: a unique violation would abort the
			// whole transaction on PostgreSQL, and partial imports go on.
			if _, err := tx.GetDevice(p.tenant, row.Body.ID); err == nil {
				failed[row.Row] = true
				errs = append(errs, FieldError{Pointer: rowPtr(row.Row) + "/id", Detail: "device already exists", Line: row.Line})
				continue
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if partial != "true" && len(failed) > 0 {
				continue // it will all roll back; keep collecting errors only
			}
			d := row.Body.device(p.tenant)
			if err := tx.CreateDevice(d); err != nil {
				return err
			}
			if err := syncOwners(tx, p.tenant, d.ID, nil, d.Owners); err != nil {
				return err
			}
			created = append(created, d)
		}
		sortErrs(errs)
		report = importReport{Imported: len(created), Failed: len(failed), Errors: capErrs(errs)}
		if len(failed) > 0 && (partial != "true" || len(created) == 0) {
			report.Imported = 0
			return invalid(itoa(len(failed))+" of "+itoa(len(rows)+countUndecoded(failed, rows))+" rows are invalid; nothing was imported", report.Errors...)
		}
		rec.Action, rec.ObjectType, rec.ObjectID, rec.AfterDigest = "device.import", "device", "", audit.Digest(created)
		rec.Detail = jsonDetail(map[string]int{"imported": len(created), "failed": len(failed)})
		return nil
	})
	if err != nil {
		return err
	}
	if report.Errors == nil {
		report.Errors = []FieldError{}
	}
	return writeJSON(w, http.StatusCreated, report)
}

// countUndecoded counts failed rows that never became importRows (JSON rows
// that were not objects), so the total in the message is right.
func countUndecoded(failed map[int]bool, rows []importRow) int {
	decoded := make(map[int]bool, len(rows))
	for _, r := range rows {
		decoded[r.Row] = true
	}
	n := 0
	for row := range failed {
		if !decoded[row] {
			n++
		}
	}
	return n
}

// rowOf extracts N from "/rows/N/...", -1 when the pointer names no row.
func rowOf(ptr string) int {
	rest, ok := strings.CutPrefix(ptr, "/rows/")
	if !ok {
		return -1
	}
	n := 0
	for i := 0; i < len(rest) && rest[i] != '/'; i++ {
		if rest[i] < '0' || rest[i] > '9' || n > maxImportRows {
			return -1
		}
		n = n*10 + int(rest[i]-'0')
	}
	return n
}

// sortErrs orders errors by row, then pointer, so answers are stable.
func sortErrs(errs []FieldError) {
	slices.SortStableFunc(errs, func(a, b FieldError) int {
		if ra, rb := rowOf(a.Pointer), rowOf(b.Pointer); ra != rb {
			return ra - rb
		}
		return compareStrings(a.Pointer, b.Pointer)
	})
}

func capErrs(errs []FieldError) []FieldError {
	if len(errs) > maxImportErrors {
		return errs[:maxImportErrors]
	}
	return errs
}
