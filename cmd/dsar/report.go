package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	dsarapp "github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/config"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/store/sqlitestore"
)

const reportSummary = "print the compliance summary of a period (dsar report --from --to), or its segmentation report (dsar report segments)"

const reportHelp = `Usage: dsar report --from YYYY-MM-DD --to YYYY-MM-DD [--json] [--data-dir DIR]
       dsar report segments --from YYYY-MM-DD --to YYYY-MM-DD [--json] [--data-dir DIR]

Prints the compliance summary of the requests received from --from (included)
to --to (excluded), dates at midnight UTC, at most 2 years apart: per type and
regulation, how many were received, completed, denied (and on what basis), are
still open, were cancelled or expired, the median and mean days to respond and
the share answered on time. It is the yearly disclosure of CCPA 11 CCR 7102,
and the same figures as GET /v1/reports/summary (--json prints that JSON).

A request is answered when completed or denied; its days to respond run from
its receipt to its final status, and it is on time when that came no later
than its (extended) due date. Requests are counted by when they were received,
in the status they have now; denials are counted by their basis (unverifiable,
not_consumer, exempt, other). The summary holds counts only, never an identity.

'dsar report segments' prints the segmentation report of the period instead
(see 'dsar report segments --help').

It exits 0 with the summary, 2 on a usage, settings or store error, 1 when
reading the store fails midway. It only reads: it creates no index or
collection.

The store is DSAR_MONGO_URI and DSAR_MONGO_DB. For the embedded store of
'dsar dev', leave DSAR_MONGO_URI unset and pass --data-dir with dev's
DSAR_DATA_DIR (see 'dsar audit verify --help': the same applies).
`

const reportSegmentsHelp = `Usage: dsar report segments --from YYYY-MM-DD --to YYYY-MM-DD [--json] [--data-dir DIR]

Prints the segmentation report of the removals made from --from (included) to
--to (excluded), dates at midnight UTC, at most 2 years apart: per connector,
segment-holding collection and scope, how many people requests removed (an
opt-out's or a deletion's job that changed the collection counts once per
scope of its request that the connector serves; a deletion's scope is all),
how many who came back the re-application check (DSAR_REAPPLY_EVERY) removed
again, and the records all of them changed. It is the same report as GET
/v1/reports/segments (--json prints that JSON). It holds counts only, never
an identity.

It exits 0 with the report, 2 on a usage, settings or store error, 1 when
reading the store fails midway. It only reads.

The store is DSAR_MONGO_URI and DSAR_MONGO_DB, or --data-dir for the
embedded store of 'dsar dev' (see 'dsar report --help').
`

// runReport runs `dsar report`, and `dsar report segments`.
func runReport(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if len(args) > 0 && args[0] == "segments" {
		return runReportSegments(ctx, args[1:], stdout, stderr, lookupEnv)
	}
	cmd := newReadCommand("report", reportHelp, "report on", "the requests collection", stdout, stderr)
	start, end, asJSON, err := cmd.window("summary", "/v1/reports/summary", args)
	if err != nil {
		return err
	}
	store, closeStore, err := cmd.open(ctx, lookupEnv, mongostore.RequestsCollection)
	if err != nil {
		return err
	}
	defer closeStore()

	sum, err := store.Summary(ctx, start, end)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if asJSON {
		return printJSON(stdout, sum)
	}
	printSummary(stdout, sum)
	return nil
}

// runReportSegments runs `dsar report segments`.
func runReportSegments(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	cmd := newReadCommand("report segments", reportSegmentsHelp, "report on", "the requests collection", stdout, stderr)
	start, end, asJSON, err := cmd.window("report", "/v1/reports/segments", args)
	if err != nil {
		return err
	}
	st, closeStore, err := cmd.open(ctx, lookupEnv, mongostore.RequestsCollection)
	if err != nil {
		return err
	}
	defer closeStore()
	rep, err := dsarapp.BuildSegmentReport(ctx, st, start, end, time.Now())
	if err != nil {
		return fmt.Errorf("report segments: %w", err)
	}
	if asJSON {
		return printJSON(stdout, rep)
	}
	printSegments(stdout, rep)
	return nil
}

// window adds --from, --to and --json to c, parses args and returns the
// window they give (dsr.SummaryWindow); what names the report and path the
// API route whose JSON --json prints.
func (c *readCommand) window(what, path string, args []string) (from, to time.Time, asJSON bool, err error) {
	f := c.fs.String("from", "", "first day of the period, `YYYY-MM-DD` (UTC), included")
	t := c.fs.String("to", "", "day after the period, `YYYY-MM-DD` (UTC), excluded")
	j := c.fs.Bool("json", false, "print the "+what+" as JSON, as GET "+path+" answers it")
	if err := c.parse(args); err != nil {
		return from, to, false, err
	}
	from, to, err = dsr.SummaryWindow(*f, *t)
	if ve := (*dsr.ValidationError)(nil); errors.As(err, &ve) {
		var parts []string
		for _, f := range ve.Fields {
			parts = append(parts, "--"+f.Field+": "+f.Message)
		}
		return from, to, false, usageError("%s: %s", c.name, strings.Join(parts, "; "))
	}
	return from, to, *j, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printSegments prints a segmentation report as a table.
func printSegments(w io.Writer, r *dsarapp.SegmentReport) {
	fmt.Fprintf(w, "Removals from segments %s to %s (UTC)\n\n", r.From.Format(time.DateOnly), r.To.AddDate(0, 0, -1).Format(time.DateOnly))
	if len(r.Rows) == 0 {
		fmt.Fprintln(w, "None.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONNECTOR\tCOLLECTION\tSCOPE\tREMOVED\tREAPPEARED\tRECORDS")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", row.Connector, row.Collection, row.Scope, row.Removed, row.Reappeared, row.Records)
	}
	fmt.Fprintf(tw, "total\t\t\t%d\t%d\t%d\n", r.Total.Removed, r.Total.Reappeared, r.Total.Records)
	_ = tw.Flush()
}

// readCommand is the command line of a one-shot command that reads the
// store: its flags (--data-dir, and those the command adds to fs) and the
// store they and the settings name.
type readCommand struct {
	name    string // as in messages, e.g. "audit verify"
	fs      *flag.FlagSet
	dataDir *string
	stderr  io.Writer
}

// newReadCommand returns the command line of `dsar name`: its usage prints
// help, the flags and the store's settings; verb says what the command
// does with the store, holds what its database holds.
func newReadCommand(name, help, verb, holds string, stdout, stderr io.Writer) *readCommand {
	fs := flag.NewFlagSet("dsar "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &readCommand{name: name, fs: fs, stderr: stderr,
		dataDir: fs.String("data-dir", "", "open the embedded store of 'dsar dev' under `DIR` (dev's DSAR_DATA_DIR) instead of DSAR_MONGO_URI")}
	fs.Usage = func() {
		fmt.Fprint(stdout, help)
		fmt.Fprintln(stdout, "\nFlags:")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fmt.Fprint(stdout, "\nSettings (environment variables):\n"+
			"  DSAR_MONGO_URI\n      MongoDB connection string of the store to "+verb+"\n"+
			"  DSAR_MONGO_DB (default dsar)\n      database holding "+holds+"\n"+
			"  DSAR_CONFIG_FILE\n      optional YAML file of settings (mongo_uri: ..., mongo_db: ...); the environment wins\n")
	}
	return c
}

// parse parses args, which take no argument besides the flags. Its errors
// ask for exit status 2, but flag.ErrHelp, returned as it is.
func (c *readCommand) parse(args []string) error {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitError{code: exitUsage, err: fmt.Errorf("%s: %w", c.name, err)}
	}
	if c.fs.NArg() > 0 {
		return usageError("%s: unexpected argument %q", c.name, c.fs.Arg(0))
	}
	return nil
}

// open loads the settings and opens the store to read (see
// openStoreToRead), checking that it holds collection.
func (c *readCommand) open(ctx context.Context, lookupEnv func(string) (string, bool), collection string) (store.Store, func(), error) {
	cfg, err := config.Load(lookupEnv)
	if err != nil {
		return nil, nil, exitError{code: exitUsage, err: err}
	}
	return openStoreToRead(ctx, c.name, cfg, *c.dataDir, collection, c.stderr)
}

// openStoreToRead opens the store a one-shot command reads: DSAR_MONGO_URI
// (without preparing it, which would create indexes), or with dataDir the
// embedded store kept there (DSAR_DATA_DIR of dsar). On MongoDB it checks
// that the database holds collection (dsar creates its collections at
// start, so one is missing only from the wrong database, or one dsar never
// ran on). Its errors ask for exit status 2. The store is as the driver
// holds it: personal fields sealed (store/sealedstore), which the commands
// that use it never read; they read counts, hashes, audit chains and keys.
func openStoreToRead(ctx context.Context, cmd string, cfg config.Config, dataDir, collection string, stderr io.Writer) (store.Store, func(), error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	fail := func(err error) (store.Store, func(), error) {
		closeAll()
		return nil, nil, exitError{code: exitUsage, err: err}
	}
	uri := cfg.MongoURI
	switch {
	case uri != "" && dataDir != "":
		return fail(fmt.Errorf("%s: DSAR_MONGO_URI and --data-dir both name a store; give one", cmd))
	case uri == "" && dataDir == "":
		return fail(fmt.Errorf("%s: no store: set DSAR_MONGO_URI (and DSAR_MONGO_DB), or pass --data-dir with the DSAR_DATA_DIR of dsar's embedded store", cmd))
	case uri == "":
		path := filepath.Join(dataDir, embeddedStoreFile)
		if err := checkNoLegacyStore(dataDir, cfg.MongoDB, path); err != nil {
			return fail(fmt.Errorf("%s: %w", cmd, err))
		}
		// Open would create what is missing; a mistyped path must not
		// pass as an empty store.
		if _, err := os.Stat(path); err != nil {
			return fail(fmt.Errorf("%s: no embedded store under %s (is --data-dir the DSAR_DATA_DIR of dsar?): %w", cmd, dataDir, err))
		}
		s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
		if err != nil {
			return fail(fmt.Errorf("%s: %w", cmd, err))
		}
		return s, func() { _ = s.Close() }, nil
	}
	client, err := mongostore.Connect(uri, "dsar-"+strings.Fields(cmd)[0])
	if err != nil {
		return fail(fmt.Errorf("store: %w", err))
	}
	closers = append(closers, func() { _ = client.Disconnect(context.Background()) })
	db := client.Database(cfg.MongoDB)
	ms := mongostore.New(db, nil)
	if err := ms.Ping(ctx); err != nil {
		return fail(fmt.Errorf("cannot reach the store (DSAR_MONGO_URI): %w", err))
	}
	names, err := db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: collection}})
	if err != nil {
		return fail(fmt.Errorf("store: %w", err))
	}
	if len(names) == 0 {
		return fail(fmt.Errorf("%s: database %q has no %s collection: is DSAR_MONGO_DB right?", cmd, cfg.MongoDB, collection))
	}
	return ms, closeAll, nil
}

// printSummary prints a summary as a table, then the denials by basis.
func printSummary(w io.Writer, s *dsr.Summary) {
	last := s.To.AddDate(0, 0, -1)
	fmt.Fprintf(w, "Requests received %s to %s (UTC), as they stand on %s\n\n",
		s.From.Format(time.DateOnly), last.Format(time.DateOnly), s.GeneratedAt.UTC().Format("2006-01-02 15:04 MST"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "type\tregulation\treceived\tcompleted\tdenied\topen\toverdue\tcancelled\texpired\tmedian days\tmean days\ton time\t")
	row := func(typ, reg string, r dsr.SummaryRow) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t\n", typ, reg, r.Received, r.Completed, r.Denied, r.Open, r.Overdue, r.Cancelled, r.Expired,
			number(r.MedianDays, "%.2f"), number(r.MeanDays, "%.2f"), percent(r.OnTimeRate, r.OnTime, r.Responded))
	}
	for _, r := range s.Rows {
		row(string(r.Type), string(r.Regulation), r)
	}
	row("total", "", s.Total)
	_ = tw.Flush()
	if s.Total.Denied == 0 {
		return
	}
	fmt.Fprintln(w, "\nDenied, by basis:")
	for _, r := range s.Rows {
		for _, basis := range dsr.DenialBases {
			if n := r.DeniedByBasis[basis]; n > 0 {
				fmt.Fprintf(w, "  %s %s: %d  %s\n", r.Type, r.Regulation, n, basis)
			}
		}
	}
}

func number(x *float64, format string) string {
	if x == nil {
		return "-"
	}
	return fmt.Sprintf(format, *x)
}

func percent(rate *float64, n, of int) string {
	if rate == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%% (%d/%d)", *rate*100, n, of)
}
