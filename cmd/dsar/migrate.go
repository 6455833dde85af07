package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/config"
	"github.com/dsar-project/dsar/internal/embedded"
	"github.com/dsar-project/dsar/store"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/store/sqlitestore"
)

const migrateSummary = "copy a store into another (FerretDB or MongoDB to SQLite, SQLite to MongoDB)"

const migrateHelp = `Usage: dsar migrate --from SOURCE --to TARGET [--from-db NAME] [--to-db NAME]

Copies every request, job, audit event, export record and idempotency key of
one store into another, as they are stored (audit events keep their hashes:
'dsar audit verify' passes on the copy as on the original). It never writes
the source, and never changes a document the target holds already.

SOURCE and TARGET are each one of:
  sqlite:FILE        the embedded SQLite store in FILE (as a target, created
                     when missing)
  ferretdb:DIR       the embedded FerretDB store of an older 'dsar dev', source
                     only: DIR is its DSAR_DATA_DIR (./data by default) or the
                     ferretdb directory under it
  mongodb://...      a MongoDB (or mongodb+srv://...); the database is
                     --from-db / --to-db, by default DSAR_MONGO_DB (dsar)

For instance, to move the data of 'dsar dev' from the old embedded store to
the new one, and later to MongoDB when the deployment grows:

  dsar migrate --from ferretdb:./data --to sqlite:./data/dsar.db
  dsar migrate --from sqlite:./data/dsar.db --to 'mongodb://dsar:...@mongo-1/?replicaSet=rs0'

Stop dsar first: documents written to the source during the copy may be
missed. The copy goes collection by collection, 500 documents per write, and
shows its progress on stderr. It is resumable: after an interruption, run the
same command again; it goes on after the last document the target holds
(and reads the source again from the start when the counts show a gap),
storing only what the target lacks. At the end it compares the counts of
each collection and exits 0 when the target holds at least as many documents
as the source, 1 when not (or on an error), 2 on bad arguments or a store it
cannot open.
`

// migrateBatch is how many documents one write of the copy carries.
const migrateBatch = 500

// endpoint is a source or target of `dsar migrate`, as given.
type endpoint struct {
	kind string // "sqlite", "ferretdb" or "mongodb"
	path string // the file or directory, or the URI
	db   string // the database, for ferretdb and mongodb
}

// String names the endpoint for messages, without a URI's password.
func (e endpoint) String() string {
	switch e.kind {
	case "mongodb":
		return redactURI(e.path) + " database " + e.db
	case "ferretdb":
		return "ferretdb:" + e.path + " database " + e.db
	}
	return e.kind + ":" + e.path
}

// redactURI hides the password of a mongodb:// URI.
func redactURI(uri string) string {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return uri
	}
	hosts := rest
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		hosts = rest[:i]
	}
	at := strings.LastIndexByte(hosts, '@')
	if at < 0 {
		return uri
	}
	user, _, hasPassword := strings.Cut(hosts[:at], ":")
	if !hasPassword {
		return uri
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// parseEndpoint reads a --from or --to value; db is the database for
// MongoDB and FerretDB.
func parseEndpoint(flagName, value, db string) (endpoint, error) {
	switch {
	case value == "":
		return endpoint{}, usageError("migrate: give --%s (sqlite:FILE, ferretdb:DIR or mongodb://...)", flagName)
	case strings.HasPrefix(value, "mongodb://"), strings.HasPrefix(value, "mongodb+srv://"):
		return endpoint{kind: "mongodb", path: value, db: db}, nil
	case strings.HasPrefix(value, "sqlite:"), strings.HasPrefix(value, "ferretdb:"):
		kind, path, _ := strings.Cut(value, ":")
		if path == "" {
			return endpoint{}, usageError("migrate: --%s %s: give a path after %q", flagName, value, kind+":")
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return endpoint{}, usageError("migrate: --%s: %v", flagName, err)
		}
		return endpoint{kind: kind, path: abs, db: db}, nil
	}
	return endpoint{}, usageError("migrate: --%s %q: not sqlite:FILE, ferretdb:DIR or mongodb://...", flagName, value)
}

// runMigrate runs `dsar migrate`.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	fs := flag.NewFlagSet("dsar migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the store to copy from: sqlite:FILE, ferretdb:DIR or mongodb://...")
	to := fs.String("to", "", "the store to copy into: sqlite:FILE or mongodb://...")
	fromDB := fs.String("from-db", "", "the source's database, for ferretdb: and mongodb: (default DSAR_MONGO_DB)")
	toDB := fs.String("to-db", "", "the target's database, for mongodb: (default DSAR_MONGO_DB)")
	fs.Usage = func() {
		fmt.Fprint(stdout, migrateHelp, "\nFlags:\n")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitError{code: exitUsage, err: fmt.Errorf("migrate: %w", err)}
	}
	if fs.NArg() > 0 {
		return usageError("migrate: unexpected argument %q", fs.Arg(0))
	}
	cfg, err := config.Load(lookupEnv)
	if err != nil {
		return exitError{code: exitUsage, err: err}
	}
	if *fromDB == "" {
		*fromDB = cfg.MongoDB
	}
	if *toDB == "" {
		*toDB = cfg.MongoDB
	}
	src, err := parseEndpoint("from", *from, *fromDB)
	if err != nil {
		return err
	}
	dst, err := parseEndpoint("to", *to, *toDB)
	if err != nil {
		return err
	}
	switch {
	case dst.kind == "ferretdb":
		return usageError("migrate: --to %s: the embedded FerretDB store is a source only; copy into sqlite:FILE or mongodb://...", *to)
	case src == dst:
		return usageError("migrate: --from and --to name the same store")
	}

	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	source, closeSource, err := openEndpoint(ctx, src, true, stderr)
	if err != nil {
		return err
	}
	closers = append(closers, closeSource)
	target, closeTarget, err := openEndpoint(ctx, dst, false, stderr)
	if err != nil {
		return err
	}
	closers = append(closers, closeTarget)

	fmt.Fprintf(stderr, "copying %s into %s\n", src, dst)
	m := migration{src: source, dst: target, progress: stderr, tty: isTerminal(stderr)}
	results, err := m.run(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("migrate: interrupted (%w): run the same command again to go on", err)
		}
		return fmt.Errorf("migrate: %w", err)
	}
	return reportCopy(stdout, results)
}

// openEndpoint opens e as a source (which must exist, and is not prepared:
// migrate writes nothing to it) or as a target (prepared: its tables or
// indexes created). Its errors ask for exit status 2.
func openEndpoint(ctx context.Context, e endpoint, source bool, stderr io.Writer) (store.Copier, func(), error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	fail := func(err error) (store.Copier, func(), error) {
		closeAll()
		return nil, nil, exitError{code: exitUsage, err: fmt.Errorf("migrate: %w", err)}
	}
	uri := e.path
	switch e.kind {
	case "sqlite":
		if source {
			if st, err := os.Stat(e.path); err != nil || !st.Mode().IsRegular() {
				return fail(fmt.Errorf("source %s: no SQLite store there", e))
			}
		}
		// The source is read only: not even its journal mode changes.
		s, err := sqlitestore.Open(ctx, e.path, sqlitestore.Options{ReadOnly: source})
		if err != nil {
			return fail(err)
		}
		return s, func() { _ = s.Close() }, nil
	case "ferretdb":
		dir, err := ferretDir(e.path, e.db)
		if err != nil {
			return fail(fmt.Errorf("source %s: %w", e, err))
		}
		log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
		m, err := embedded.StartMongo(ctx, dir, log)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, m.Stop)
		uri = m.URI()
	}
	client, err := mongostore.Connect(uri, "dsar-migrate")
	if err != nil {
		return fail(fmt.Errorf("%s: %w", e, err))
	}
	closers = append(closers, func() { _ = client.Disconnect(context.Background()) })
	db := client.Database(e.db)
	s := mongostore.New(db, nil)
	if err := s.Ping(ctx); err != nil {
		return fail(fmt.Errorf("cannot reach %s: %w", e, err))
	}
	if source {
		names, err := db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: store.Requests}})
		if err != nil {
			return fail(fmt.Errorf("%s: %w", e, err))
		}
		if len(names) == 0 {
			return fail(fmt.Errorf("source %s has no %s collection: is the database (--from-db) right?", e, store.Requests))
		}
	} else if err := s.Prepare(ctx); err != nil {
		return fail(fmt.Errorf("%s: %w", e, err))
	}
	return s, closeAll, nil
}

// ferretDir is the FerretDB directory of an embedded store given as dir:
// dir itself when it holds database db's file, or dir/ferretdb (dir being
// dev's DSAR_DATA_DIR). FerretDB would create a missing database, so a
// mistyped path must not pass as an empty store.
func ferretDir(dir, db string) (string, error) {
	for _, d := range []string{dir, filepath.Join(dir, "ferretdb")} {
		if st, err := os.Stat(filepath.Join(d, db+".sqlite")); err == nil && st.Mode().IsRegular() {
			return d, nil
		}
	}
	return "", fmt.Errorf("no embedded FerretDB database %q in %s or %s (is it dev's DSAR_DATA_DIR, and --from-db its DSAR_MONGO_DB?)",
		db, dir, filepath.Join(dir, "ferretdb"))
}

// isTerminal reports whether w is a terminal: not a file, a pipe, or a
// character device such as /dev/null (which os.ModeCharDevice alone would
// take for one).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// migration copies every collection of src into dst.
type migration struct {
	src, dst store.Copier
	progress io.Writer // where the progress lines go
	tty      bool      // progress is a terminal: one line, rewritten
	// afterBatch, when set, is called after each batch is written (tests).
	afterBatch func(collection string)
}

// copyResult is what the copy of one collection did.
type copyResult struct {
	collection     string
	source, target int64 // the counts at the end
	copied         int64 // documents this run stored
}

// run copies the collections in store.Collections order and returns what
// it did.
func (m migration) run(ctx context.Context) ([]copyResult, error) {
	var out []copyResult
	for _, coll := range store.Collections {
		r, err := m.collection(ctx, coll)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// collection copies one collection: from after the target's last document
// when the source holds it too (a copy that stopped goes on), then, if the
// target still holds fewer documents than the source, once more from the
// start (insert-if-absent fills the gaps).
func (m migration) collection(ctx context.Context, coll string) (copyResult, error) {
	r := copyResult{collection: coll}
	total, err := m.src.Count(ctx, coll)
	if err != nil {
		return r, err
	}
	held, err := m.dst.Count(ctx, coll)
	if err != nil {
		return r, err
	}
	after := ""
	if held > 0 {
		last, err := m.dst.LastKey(ctx, coll)
		if err != nil {
			return r, err
		}
		if has, err := m.src.HasKey(ctx, coll, last); err != nil {
			return r, err
		} else if has {
			after = last
		}
	}
	p := &copyProgress{w: m.progress, tty: m.tty, coll: coll, total: total, began: time.Now()}
	if after != "" {
		p.start(min(held, total))
	}
	for {
		if err := m.pass(ctx, coll, after, p, &r); err != nil {
			p.end()
			return r, err
		}
		if r.target, err = m.dst.Count(ctx, coll); err != nil {
			p.end()
			return r, err
		}
		if after == "" || r.target >= total {
			break
		}
		after = "" // a gap before the resumption point: read it all again
		p.start(0)
	}
	p.finish()
	r.source, err = m.src.Count(ctx, coll)
	return r, err
}

// pass copies coll's documents after after, migrateBatch at a time.
func (m migration) pass(ctx context.Context, coll, after string, p *copyProgress, r *copyResult) error {
	batch := make([]bson.Raw, 0, migrateBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := m.dst.PutDocuments(ctx, coll, batch)
		if err != nil {
			return err
		}
		r.copied += int64(n)
		p.add(len(batch))
		batch = batch[:0]
		if m.afterBatch != nil {
			m.afterBatch(coll)
		}
		return ctx.Err()
	}
	err := m.src.EachDocument(ctx, coll, after, func(_ string, doc bson.Raw) error {
		batch = append(batch, append(bson.Raw(nil), doc...)) // doc is the driver's until fn returns
		if len(batch) < migrateBatch {
			return nil
		}
		return flush()
	})
	if err != nil {
		return err
	}
	return flush()
}

// copyProgress shows how far the copy of one collection is: on a terminal
// one line rewritten after each batch, elsewhere a line at each 10%.
type copyProgress struct {
	w           io.Writer
	tty         bool
	coll        string
	total, done int64
	read        int64 // documents read in this run, for the rate
	began       time.Time
	shown       int64 // the last tenth printed (not a terminal)
}

// start sets where the copy starts from: done documents are in the target
// already.
func (p *copyProgress) start(done int64) {
	p.done = done
	p.shown = 0
	if p.total > 0 {
		p.shown = 10 * done / p.total
	}
}

// add counts n more documents copied (or found in the target already).
func (p *copyProgress) add(n int) {
	p.done += int64(n)
	p.read += int64(n)
	p.show(false)
}

// show prints the line: always on a terminal, else when the copy reached
// a further tenth (or, with final, when it printed none for the end).
func (p *copyProgress) show(final bool) {
	done := min(p.done, p.total)
	pct := int64(100)
	if p.total > 0 {
		pct = 100 * done / p.total
	}
	if !p.tty {
		if pct/10 <= p.shown && !(final && p.shown < 10) {
			return
		}
		p.shown = pct / 10
		if final {
			p.shown = 10
		}
	}
	rate := int64(0)
	if s := time.Since(p.began).Seconds(); s > 0 {
		rate = int64(float64(p.read) / s)
	}
	line := fmt.Sprintf("%-16s  %s/%s  %3d%%  %s/s", p.coll, thousands(done), thousands(p.total), pct, thousands(rate))
	if p.tty {
		fmt.Fprintf(p.w, "\r%-60s", line)
		return
	}
	fmt.Fprintln(p.w, line)
}

// finish shows the end of the collection's copy.
func (p *copyProgress) finish() {
	p.done = p.total
	p.show(true)
	p.end()
}

// end ends the terminal's line.
func (p *copyProgress) end() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

// thousands renders n with a comma between each group of three digits.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// reportCopy prints what the copy did, collection by collection; an error
// (exit status 1) when the target holds fewer documents of a collection
// than the source.
func reportCopy(w io.Writer, results []copyResult) error {
	fmt.Fprintf(w, "%-16s  %10s  %10s  %10s\n", "collection", "source", "target", "copied now")
	var short []string
	var copied int64
	for _, r := range results {
		fmt.Fprintf(w, "%-16s  %10s  %10s  %10s\n", r.collection, thousands(r.source), thousands(r.target), thousands(r.copied))
		copied += r.copied
		if r.target < r.source {
			short = append(short, fmt.Sprintf("%s (%s of %s)", r.collection, thousands(r.target), thousands(r.source)))
		}
	}
	if len(short) > 0 {
		return fmt.Errorf("migrate: the target holds fewer documents than the source in %s: was the source written during the copy? run the command again", strings.Join(short, ", "))
	}
	fmt.Fprintf(w, "%s documents copied; the target holds as many documents as the source in every collection\n", thousands(copied))
	for _, r := range results {
		if r.target > r.source {
			fmt.Fprintf(w, "note: the target holds %s more %s than the source (documents it held before)\n", thousands(r.target-r.source), r.collection)
		}
	}
	return nil
}
