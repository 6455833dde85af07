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
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/config"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/store/sqlitestore"
)

const reportSummary = "print the compliance summary of a period (dsar report --from --to)"

const reportHelp = `Usage: dsar report --from YYYY-MM-DD --to YYYY-MM-DD [--json] [--data-dir DIR]

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

It exits 0 with the summary, 2 on a usage, settings or store error, 1 when
reading the store fails midway. It only reads: it creates no index or
collection.

The store is DSAR_MONGO_URI and DSAR_MONGO_DB. For the embedded store of
'dsar dev', leave DSAR_MONGO_URI unset and pass --data-dir with dev's
DSAR_DATA_DIR (see 'dsar audit verify --help': the same applies).
`

// runReport runs `dsar report`.
func runReport(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	cmd := newReadCommand("report", reportHelp, "report on", "the requests collection", stdout, stderr)
	from := cmd.fs.String("from", "", "first day of the period, `YYYY-MM-DD` (UTC), included")
	to := cmd.fs.String("to", "", "day after the period, `YYYY-MM-DD` (UTC), excluded")
	asJSON := cmd.fs.Bool("json", false, "print the summary as JSON, as GET /v1/reports/summary answers it")
	if err := cmd.parse(args); err != nil {
		return err
	}
	start, end, err := dsr.SummaryWindow(*from, *to)
	if ve := (*dsr.ValidationError)(nil); errors.As(err, &ve) {
		var parts []string
		for _, f := range ve.Fields {
			parts = append(parts, "--"+f.Field+": "+f.Message)
		}
		return usageError("report: %s", strings.Join(parts, "; "))
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
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	printSummary(stdout, sum)
	return nil
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
// ran on). Its errors ask for exit status 2.
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
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second).SetAppName("dsar-" + strings.Fields(cmd)[0]))
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
