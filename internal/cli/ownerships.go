package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fleetgate/fleetgate/internal/model"
)

// relation is one ownership as the admin API takes it.
type relation struct {
	Subject    string `json:"subject"`
	ObjectType string `json:"object_type"`
	ObjectID   string `json:"object_id"`
}

func (r relation) String() string {
	return sanitize(r.Subject) + " owns " + sanitize(r.ObjectType) + " " + sanitize(r.ObjectID)
}

func (r relation) query() string {
	return url.Values{"subject": {r.Subject}, "object_type": {r.ObjectType}, "object_id": {r.ObjectID}}.Encode()
}

func (a *app) ownershipsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ownerships",
		Short: "Manage who owns which objects (what identity bindings check)",
		Long: "Manage ownership relations: subject SUBJECT owns object OBJECT_TYPE OBJECT_ID,\n" +
			"e.g. user:alice owns vehicle WVW123. Subjects are user:NAME, app:NAME or\n" +
			"device:ID. Operations whose policy binds a parameter with owned: TYPE let a\n" +
			"caller through only for the objects of that type it owns.",
	}

	var page pageOpts
	var filter relation
	list := &cobra.Command{
		Use: "list [--subject S] [--object-type T] [--object-id ID]", Short: "List ownership relations", Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			q := url.Values{"subject": {filter.Subject}, "object_type": {filter.ObjectType}, "object_id": {filter.ObjectID}}
			res, err := s.list(ctx, "/ownerships", q, page)
			if err != nil {
				return err
			}
			return s.printList(res, func() error {
				items, err := decodeItems[model.Ownership](res.Items)
				if err != nil {
					return err
				}
				t := newTable(s.stdout, "SUBJECT", "OBJECT TYPE", "OBJECT ID", "CREATED")
				for _, x := range items {
					t.row(x.Subject, x.ObjectType, x.ObjectID, fmtTime(x.CreatedAt))
				}
				return t.flush()
			})
		}),
	}
	list.Flags().StringVar(&filter.Subject, "subject", "", "only this subject's relations, e.g. user:alice")
	list.Flags().StringVar(&filter.ObjectType, "object-type", "", "only objects of this type, e.g. vehicle")
	list.Flags().StringVar(&filter.ObjectID, "object-id", "", "only this object (with --object-type)")
	// Tenants may hold millions of relations: a bounded default, with the
	// usual hint to go on; --limit 0 exports them all (-o json).
	addPageFlags(list, &page, serverMaxLimit, "relations")

	add := &cobra.Command{
		Use: "add SUBJECT OBJECT_TYPE OBJECT_ID", Short: "Add one ownership relation", Args: cobra.ExactArgs(3),
		Example: "  fleetgate ownerships add user:alice vehicle WVW123",
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			r := relation{args[0], args[1], args[2]}
			raw, err := s.call(ctx, http.MethodPost, "/ownerships", r, nil)
			if err != nil {
				return err
			}
			return s.done(raw, "Added: %s.", r)
		}),
	}

	remove := &cobra.Command{
		Use: "remove SUBJECT OBJECT_TYPE OBJECT_ID", Short: "Remove one ownership relation", Args: cobra.ExactArgs(3),
		RunE: a.run(func(ctx context.Context, s *session, args []string) error {
			r := relation{args[0], args[1], args[2]}
			if r.Subject == "" || r.ObjectType == "" || r.ObjectID == "" {
				return errors.New("subject, object type and object id must not be empty")
			}
			raw, err := s.call(ctx, http.MethodDelete, "/ownerships?"+r.query(), nil, nil)
			if err != nil {
				return err
			}
			return s.done(raw, "Removed: %s.", r)
		}),
	}

	cmd.AddCommand(list, add, a.ownershipsImportCmd(), remove)
	return cmd
}

// ---- import

// importOpts are the flags of `ownerships import`.
type importOpts struct {
	file, format string
	chunk, skip  int
	dryRun       bool
}

// maxImportChunk is the most relations the server takes in one request.
const maxImportChunk = 10000

// maxChunkBytes keeps a request well below the server's 8 MiB body limit
// for batches, whatever the length of the rows.
const maxChunkBytes = 6 << 20

func (a *app) ownershipsImportCmd() *cobra.Command {
	var o importOpts
	cmd := &cobra.Command{
		Use:   "import -f FILE.csv|FILE.json [--chunk 5000] [--skip N] [--dry-run]",
		Short: "Add many ownership relations from a CSV or JSON file",
		Long: `Add ownership relations from a file:

  CSV   a header row naming the columns subject, object_type and object_id
        (in any order), then one relation per line; spaces around values
        are trimmed.
  JSON  an array of {"subject": ..., "object_type": ..., "object_id": ...}
        objects, or the {"items": [...]} that ownerships list -o json prints.

The whole file is checked first: every bad or repeated row is reported with
its line, and then nothing is sent. The rows are sent in chunks of --chunk
relations (at most 10000). Each chunk is all or nothing on the server, but
the import as a whole is not: if a chunk is rejected (for instance because
one of its relations already exists), the chunks before it stay imported.
The error says which lines were rejected and the --skip N that resumes the
import after them once the file is fixed. Progress ("imported N/M") goes to
stderr.`,
		Example: "  fleetgate ownerships import -f owners.csv\n" +
			"  fleetgate ownerships list --limit 0 -o json > owners.json   # export",
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, s *session, _ []string) error {
			return runImport(ctx, s, &o)
		}),
	}
	cmd.Flags().StringVarP(&o.file, "file", "f", "", "CSV or JSON file, - for stdin (required)")
	cmd.Flags().StringVar(&o.format, "format", "", "csv or json (default: from the file name's extension)")
	cmd.Flags().IntVar(&o.chunk, "chunk", 5000, "relations per request, 1 to 10000")
	cmd.Flags().IntVar(&o.skip, "skip", 0, "skip the first N relations of the file (to resume an import)")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "check the file and show the requests without sending anything")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// importSummary is what import prints with -o json.
type importSummary struct {
	File     string `json:"file"`
	Rows     int    `json:"rows"`
	Skipped  int    `json:"skipped"`
	Imported int    `json:"imported"`
	Requests int    `json:"requests"`
	DryRun   bool   `json:"dry_run"`
}

func runImport(ctx context.Context, s *session, o *importOpts) error {
	if o.chunk < 1 || o.chunk > maxImportChunk {
		return fmt.Errorf("invalid --chunk %d: want 1 to %d (the server takes at most %d relations per request)", o.chunk, maxImportChunk, maxImportChunk)
	}
	if o.skip < 0 {
		return fmt.Errorf("invalid --skip %d", o.skip)
	}
	rows, name, err := loadRelations(o.file, o.format, s.cmd.InOrStdin())
	if err != nil {
		return err
	}
	if o.skip > len(rows) {
		return fmt.Errorf("--skip %d: %s holds only %d relations", o.skip, name, len(rows))
	}
	todo := rows[o.skip:]
	chunks := splitChunks(todo, o.chunk, maxChunkBytes)
	sum := importSummary{File: name, Rows: len(rows), Skipped: o.skip, Imported: o.skip, Requests: len(chunks), DryRun: o.dryRun}
	if o.dryRun {
		if s.json {
			return printJSON(s.stdout, sum)
		}
		_, err := fmt.Fprintf(s.stdout, "%s: %d valid relations%s; would send %s. Dry run: nothing sent.\n",
			sanitize(name), len(rows), skipped(o.skip), plural(len(chunks), "request"))
		return err
	}
	progress := len(chunks) > 1
	for i, c := range chunks {
		items := make([]relation, c.to-c.from)
		for j := range items {
			items[j] = todo[c.from+j].relation
		}
		if _, err := s.call(ctx, http.MethodPost, "/ownerships", map[string]any{"items": items}, nil); err != nil {
			return chunkFailed(err, name, todo[c.from:c.to], i, len(chunks), sum.Imported, len(rows))
		}
		sum.Imported += len(items)
		if progress {
			fmt.Fprintf(s.stderr, "imported %d/%d\n", sum.Imported, len(rows))
		}
	}
	if s.json {
		return printJSON(s.stdout, sum)
	}
	_, err = fmt.Fprintf(s.stdout, "Imported %d relations from %s%s in %s.\n",
		sum.Imported-o.skip, sanitize(name), skipped(o.skip), plural(len(chunks), "request"))
	return err
}

func skipped(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (first %d skipped)", n)
}

// chunk is a range [from, to) of rows sent in one request.
type chunk struct{ from, to int }

// splitChunks cuts rows into chunks of at most size rows and about
// maxBytes of JSON each.
func splitChunks(rows []importRow, size, maxBytes int) []chunk {
	var out []chunk
	c, bytes := chunk{}, 0
	for i, r := range rows {
		n := r.size()
		if i > c.from && (i-c.from >= size || bytes+n > maxBytes) {
			c.to = i
			out = append(out, c)
			c, bytes = chunk{from: i}, 0
		}
		bytes += n
	}
	if len(rows) > c.from {
		c.to = len(rows)
		out = append(out, c)
	}
	return out
}

// chunkFailed explains a failed chunk: which lines, what is already
// imported, how to resume. The server's field errors ("/items/17") are
// shown at their line in the file. Nothing of the secret kind is in rows.
func chunkFailed(err error, name string, rows []importRow, i, n, done, total int) error {
	err = locateProblem(err, func(ptr string) string {
		rest, ok := strings.CutPrefix(ptr, "/items/")
		if !ok {
			return ""
		}
		idx, _, _ := strings.Cut(rest, "/")
		var k int
		if _, e := fmt.Sscanf(idx, "%d", &k); e != nil || k < 0 || k >= len(rows) {
			return ""
		}
		return fmt.Sprintf("%s:%d", name, rows[k].line)
	})
	first, last := rows[0].line, rows[len(rows)-1].line
	var pe *ProblemError
	var hint string
	if errors.As(err, &pe) && pe.Status < 500 {
		hint = fmt.Sprintf("chunk %d of %d (%s lines %d-%d) was rejected; none of its relations were stored.", i+1, n, sanitize(name), first, last)
	} else {
		hint = fmt.Sprintf("chunk %d of %d (%s lines %d-%d) may or may not have been stored; check with `fleetgate ownerships list` before resuming (and use --skip %d if it was).",
			i+1, n, sanitize(name), first, last, done+len(rows))
	}
	if done > 0 {
		hint += fmt.Sprintf("\n%d of %d relations were imported before it; after fixing the file, resume with --skip %d.", done, total, done)
	} else {
		hint += "\nNothing was imported before it."
	}
	return fmt.Errorf("%w\n%s", err, hint)
}
