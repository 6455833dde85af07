package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/config"
	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/catalog"
	"github.com/dsar-project/dsar/connectors/mask"
	"github.com/dsar-project/dsar/store/mongostore"
)

const connectorsSummary = "list the connector types, or check the configured connectors (dsar connectors list|test)"

const discoverSummary = "scan the configured databases for personal data the connectors file misses"

const connectorsHelp = `Usage: dsar connectors <subcommand> [flags]

Subcommands:
  list       the connector types and the actions each supports; with a
             connectors file, also each configured connector and its actions
  test       check every configured connector against its system: reachable,
             credentials accepted, named collections, tables and fields exist,
             permissions enough for each configured action. Exits 1 when a
             check fails

Run 'dsar connectors <subcommand> --help' for its flags and settings.
`

const connectorsListHelp = `Usage: dsar connectors list [--file FILE]

Prints the connector types dsar ships, the actions a connector of each can be
configured for (export: access requests, erase: deletion, opt_out), and what
else it does (resolve: finds more identities of a person before fan-out; test:
checks itself, see 'dsar connectors test'; discover: scans its system, see
'dsar discover'). With a connectors file (--file, else DSAR_CONNECTORS_FILE) it
then lists each configured connector with the actions its settings give it.
Loading the file builds the connectors as a worker does; it reads no data.

It exits 0, or 2 on a usage or settings error or a file that does not load.
`

const connectorsTestHelp = `Usage: dsar connectors test [--file FILE] [--timeout 30s] [--strict]

Checks every connector of the connectors file (--file, else
DSAR_CONNECTORS_FILE) against its live system and prints a table, one line per
check: connector, check, result, detail. A result is ok, FAIL, or unknown: the
system does not say (FerretDB lists no privileges; a type that cannot check
itself), which is never shown as ok. What each type checks is on its page,
docs/connectors/<type>.md. Checks read only: no data is written, and no value
of a record is printed.

It exits 0 when no check failed (with --strict: and none is unknown), 1 when
one did, 2 on a usage or settings error or a file that does not load.
`

const discoverHelp = `Usage: dsar discover [--file FILE] [--sample 100] [--connector NAME]

Scans each configured database (the connectors of the file, --file, else
DSAR_CONNECTORS_FILE, whose type can scan: see 'dsar connectors list'): its
collections or tables, their fields, and at most --sample documents or rows of
each, for identity-shaped data (emails and phone numbers by their value,
customer ids by the name of their field, advertising and device ids by the
name of their field and a value of their form) that the file does not cover. It
prints, as YAML to merge into the file, an entry per collection with such
fields: new collections to add, and fields to add to collections the file has.
Review each entry: the erase strategy of a new collection is yours to choose.

It reads samples only, and never stores or prints their values: the entries
carry field names and counts. It says how much it read, and shows its progress
on standard error (a bar on a terminal, a line per collection otherwise).

It exits 0, 1 when a connector could not be scanned (the others are), 2 on a
usage or settings error or a file that does not load.
`

// connectorsSettings lists the settings the connectors commands read.
const connectorsSettings = `
Settings (environment variables):
  DSAR_CONNECTORS_FILE
      YAML file of connectors (see docs/connectors.md); --file overrides it
  DSAR_MONGO_URI
      the MongoDB of dsar's store, which mongodb connectors without a uri of their own use
  DSAR_CONFIG_FILE
      optional YAML file of settings (connectors_file: ..., mongo_uri: ...); the environment wins
  the variables the connectors file refers to as ${VAR}
`

// runConnectors runs `dsar connectors <subcommand>`.
func runConnectors(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, connectorsHelp)
		return usageError("connectors: no subcommand given")
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, connectorsHelp)
		return nil
	case "list":
		return connectorsList(ctx, args[1:], stdout, stderr, lookupEnv)
	case "test":
		return connectorsTest(ctx, args[1:], stdout, stderr, lookupEnv)
	}
	fmt.Fprint(stderr, connectorsHelp)
	return usageError("connectors: unknown subcommand %q", args[0])
}

// connectorsCommand is the command line of a command that loads the
// connectors file: its flags (--file, and those the command adds).
type connectorsCommand struct {
	name string
	fs   *flag.FlagSet
	file *string
}

func newConnectorsCommand(name, help string, stdout, stderr io.Writer) *connectorsCommand {
	fs := flag.NewFlagSet("dsar "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &connectorsCommand{name: name, fs: fs,
		file: fs.String("file", "", "the connectors `FILE` (default DSAR_CONNECTORS_FILE)")}
	fs.Usage = func() {
		fmt.Fprint(stdout, help)
		fmt.Fprintln(stdout, "\nFlags:")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fmt.Fprint(stdout, connectorsSettings)
	}
	return c
}

// parse parses args, which take no argument besides the flags. Its errors
// ask for exit status 2, but flag.ErrHelp, returned as it is.
func (c *connectorsCommand) parse(args []string) error {
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

// path returns the settings and the connectors file: --file, else
// DSAR_CONNECTORS_FILE; "" and no error when none is set and required is
// false. Its errors ask for exit status 2.
func (c *connectorsCommand) path(lookupEnv func(string) (string, bool), required bool) (config.Config, string, error) {
	cfg, err := config.Load(lookupEnv)
	if err != nil {
		return cfg, "", exitError{code: exitUsage, err: err}
	}
	path := *c.file
	if path == "" {
		path = cfg.ConnectorsFile
	}
	if path == "" && required {
		return cfg, "", usageError("%s: no connectors file: set DSAR_CONNECTORS_FILE or pass --file", c.name)
	}
	return cfg, path, nil
}

// load builds the connectors of the file (--file, else
// DSAR_CONNECTORS_FILE) with every type of the catalog, as a worker does;
// mongodb connectors without a uri use DSAR_MONGO_URI. It returns a nil
// registry and no error when no file is set and required is false. Its
// errors ask for exit status 2.
func (c *connectorsCommand) load(ctx context.Context, lookupEnv func(string) (string, bool), required bool) (reg *connectors.Registry, path string, closeAll func(), err error) {
	cfg, path, err := c.path(lookupEnv, required)
	if err != nil || path == "" {
		return nil, "", func() {}, err
	}
	// These commands never mask; a file whose masks are keyed (hmac,
	// email_format) validates only with a key, so they get a throwaway one.
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	masker, err := mask.NewMasker(key)
	if err != nil {
		return nil, "", nil, err
	}
	deps := connectors.Deps{Log: slog.New(slog.DiscardHandler), Mask: masker}
	var client *mongo.Client
	if cfg.MongoURI != "" {
		// Connect dials lazily: only connectors that use the store reach it.
		client, err = mongostore.Connect(cfg.MongoURI, "dsar-"+strings.Fields(c.name)[0])
		if err != nil {
			return nil, "", nil, usageError("%s: DSAR_MONGO_URI: %w", c.name, err)
		}
		deps.Mongo = client
	}
	disconnect := func() {
		if client != nil {
			_ = client.Disconnect(context.Background())
		}
	}
	reg, err = connectors.LoadFile(ctx, path, catalog.Types(deps), lookupEnv)
	if err != nil {
		disconnect()
		return nil, "", nil, usageError("%s: %w", c.name, err)
	}
	return reg, path, func() { _ = reg.Close(); disconnect() }, nil
}

// connectorsList runs `dsar connectors list`.
func connectorsList(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	cmd := newConnectorsCommand("connectors list", connectorsListHelp, stdout, stderr)
	if err := cmd.parse(args); err != nil {
		return err
	}
	reg, path, closeAll, err := cmd.load(ctx, lookupEnv, false)
	if err != nil {
		return err
	}
	defer closeAll()

	fmt.Fprintln(stdout, "Connector types:")
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tACTIONS\tALSO\tREACHES")
	for _, k := range catalog.Kinds() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Name, actionList(k.Actions), also(k.Resolves, k.Checks, k.Discovers), k.Summary)
	}
	_ = tw.Flush()
	if reg == nil {
		fmt.Fprintln(stdout, "\nNo connectors file (set DSAR_CONNECTORS_FILE or pass --file to list its connectors).")
		return nil
	}
	fmt.Fprintf(stdout, "\nConnectors in %s:\n", path)
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tACTIONS\tALSO")
	for _, name := range reg.Names() {
		c, _ := reg.Lookup(name)
		var acts []connectors.Action
		for _, a := range connectors.Actions() {
			if connectors.Supports(c, a) {
				acts = append(acts, a)
			}
		}
		_, resolves := c.(connectors.Resolver)
		_, checks := c.(connectors.Checker)
		_, discovers := c.(connectors.Discoverer)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, reg.Type(name), actionList(acts), also(resolves, checks, discovers))
	}
	return tw.Flush()
}

func actionList(acts []connectors.Action) string {
	if len(acts) == 0 {
		return "-"
	}
	s := make([]string, len(acts))
	for i, a := range acts {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

func also(resolves, checks, discovers bool) string {
	var s []string
	if resolves {
		s = append(s, "resolve")
	}
	if checks {
		s = append(s, "test")
	}
	if discovers {
		s = append(s, "discover")
	}
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

// connectorsTest runs `dsar connectors test`.
func connectorsTest(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	cmd := newConnectorsCommand("connectors test", connectorsTestHelp, stdout, stderr)
	timeout := cmd.fs.Duration("timeout", 30*time.Second, "how long the checks of one connector may take")
	strict := cmd.fs.Bool("strict", false, "fail (exit 1) on a check that is unknown, too")
	if err := cmd.parse(args); err != nil {
		return err
	}
	if *timeout <= 0 {
		return usageError("connectors test: --timeout must be positive")
	}
	reg, _, closeAll, err := cmd.load(ctx, lookupEnv, true)
	if err != nil {
		return err
	}
	defer closeAll()

	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONNECTOR\tCHECK\tRESULT\tDETAIL")
	var passed, failed, unknown int
	for _, name := range reg.Names() {
		c, _ := reg.Lookup(name)
		var checks []connectors.Check
		if ch, ok := c.(connectors.Checker); ok {
			cctx, cancel := context.WithTimeout(ctx, *timeout)
			checks = ch.Check(cctx)
			cancel()
		} else {
			checks = []connectors.Check{{What: "checks", Err: fmt.Errorf("%w: type %s cannot check itself", connectors.ErrNotChecked, reg.Type(name))}}
		}
		for _, ch := range checks {
			result, detail := "ok", ""
			switch {
			case ch.Passed():
				passed++
			case ch.Unknown():
				result, detail = "unknown", oneLine(ch.Err)
				unknown++
			default:
				result, detail = "FAIL", oneLine(ch.Err)
				failed++
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, ch.What, result, detail)
		}
	}
	_ = tw.Flush()
	fmt.Fprintf(stdout, "\n%s: %d checks passed, %d failed, %d unknown\n", plural(len(reg.Names()), "connector"), passed, failed, unknown)
	if failed > 0 || (*strict && unknown > 0) {
		return exitError{code: 1, err: fmt.Errorf("connectors test: %d checks failed, %d unknown", failed, unknown)}
	}
	return nil
}

// plural writes n things: "1 connector", "2 connectors".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// oneLine returns err's message on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// runDiscover runs `dsar discover`.
func runDiscover(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	cmd := newConnectorsCommand("discover", discoverHelp, stdout, stderr)
	sample := cmd.fs.Int("sample", connectors.DefaultSample, "documents or rows read per collection or table, at most (1 to 100000)")
	only := cmd.fs.String("connector", "", "scan only the connector called `NAME`")
	if err := cmd.parse(args); err != nil {
		return err
	}
	if *sample < 1 || *sample > 100_000 {
		return usageError("discover: --sample must be from 1 to 100000")
	}
	reg, _, closeAll, err := cmd.load(ctx, lookupEnv, true)
	if err != nil {
		return err
	}
	defer closeAll()
	names := reg.Names()
	if *only != "" {
		if _, ok := reg.Lookup(*only); !ok {
			return usageError("discover: no connector %q in the file (have: %s)", *only, strings.Join(names, ", "))
		}
		names = []string{*only}
	}

	tty := isTerminal(stderr)
	var total connectors.Scanned
	var scannedConnectors, failures int
	var found []connectorFindings
	for _, name := range names {
		c, _ := reg.Lookup(name)
		d, ok := c.(connectors.Discoverer)
		if !ok {
			fmt.Fprintf(stderr, "%s: type %s cannot scan its system; skipped\n", name, reg.Type(name))
			continue
		}
		bar := &scanProgress{w: stderr, name: name, tty: tty}
		var fs []connectors.Finding
		scanned, err := d.Discover(ctx, connectors.DiscoverOptions{Sample: *sample, Progress: bar.show},
			func(f connectors.Finding) { fs = append(fs, f) })
		bar.end()
		total.Collections += scanned.Collections
		total.Documents += scanned.Documents
		if err != nil {
			failures++
			fmt.Fprintf(stderr, "%s: scan failed after %d collections: %s\n", name, scanned.Collections, oneLine(err))
			continue
		}
		scannedConnectors++
		fmt.Fprintf(stderr, "%s: read %d documents or rows from %d collections or tables\n", name, scanned.Documents, scanned.Collections)
		if len(fs) > 0 {
			kind, _ := catalog.Lookup(reg.Type(name))
			found = append(found, connectorFindings{name: name, list: kind.List, findings: fs})
		}
	}
	read := fmt.Sprintf("read %d documents or rows from %d collections or tables of %s (at most %d each)",
		total.Documents, total.Collections, plural(scannedConnectors, "connector"), *sample)
	fmt.Fprintln(stderr, read)
	writeSuggestions(stdout, read, found)
	if failures > 0 {
		return exitError{code: 1, err: fmt.Errorf("discover: %d connectors could not be scanned", failures)}
	}
	return nil
}

// connectorFindings are the findings of one connector; list is its type's
// setting listing collections or tables (catalog.Kind.List).
type connectorFindings struct {
	name, list string
	findings   []connectors.Finding
}

// writeSuggestions prints the findings as connectors file entries to merge:
// per connector, a collection entry per collection, new ones first, each
// field under match with the kind most of its sampled values have. A type
// with no list of collections gets its findings as comments.
func writeSuggestions(w io.Writer, read string, found []connectorFindings) {
	fmt.Fprintf(w, "# dsar discover: %s.\n", read)
	if len(found) == 0 {
		fmt.Fprintln(w, "# Nothing found that the connectors file does not cover.")
		return
	}
	fmt.Fprintln(w, "# Fields holding identity-shaped values that the connectors file does not cover, as entries")
	fmt.Fprintln(w, "# to merge into it. Review each: the erase strategy of a new collection is yours to choose.")
	fmt.Fprintln(w, "connectors:")
	for _, cf := range found {
		fmt.Fprintf(w, "  - name: %s\n", yamlString(cf.name))
		cols := map[string][]connectors.Finding{}
		var order []string
		for _, f := range cf.findings {
			if _, seen := cols[f.Collection]; !seen {
				order = append(order, f.Collection)
			}
			cols[f.Collection] = append(cols[f.Collection], f)
		}
		// New collections first, then those the file has; by name.
		sort.SliceStable(order, func(i, j int) bool {
			ci, cj := cols[order[i]][0].Covered, cols[order[j]][0].Covered
			if ci != cj {
				return !ci
			}
			return order[i] < order[j]
		})
		if cf.list == "" {
			for _, col := range order {
				for _, f := range cols[col] {
					fmt.Fprintf(w, "    # %s: field %s holds %s values (%d of %d sampled)\n", col, f.Field, f.Kind, f.Matches, f.Sampled)
				}
			}
			continue
		}
		fmt.Fprintf(w, "    %s:\n", cf.list)
		for _, col := range order {
			fs := cols[col]
			if fs[0].Covered {
				fmt.Fprintf(w, "      # in the file already: add these fields to its match (or to what its erasure masks)\n")
			} else {
				fmt.Fprintf(w, "      # not in the file\n")
			}
			fmt.Fprintf(w, "      - name: %s\n        match:\n", yamlString(col))
			for _, field := range fieldsOf(fs) {
				best, others := pickKind(fs, field)
				note := fmt.Sprintf("%d of %d sampled", best.Matches, best.Sampled)
				for _, o := range others {
					note += fmt.Sprintf("; also %s in %d", o.Kind, o.Matches)
				}
				fmt.Fprintf(w, "          %s: %s  # %s\n", yamlString(field), best.Kind, note)
			}
			if !fs[0].Covered {
				fmt.Fprintln(w, "        erase: delete  # or mask, with mask: {field: strategy}; choose")
			}
		}
	}
}

// fieldsOf returns the fields of fs, sorted, once each.
func fieldsOf(fs []connectors.Finding) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range fs {
		if !seen[f.Field] {
			seen[f.Field] = true
			out = append(out, f.Field)
		}
	}
	sort.Strings(out)
	return out
}

// pickKind returns, of the findings of field, the one whose kind most
// sampled values have (ties: the first in connectors.IdentityKinds), and
// the others.
func pickKind(fs []connectors.Finding, field string) (connectors.Finding, []connectors.Finding) {
	var of []connectors.Finding
	for _, f := range fs {
		if f.Field == field {
			of = append(of, f)
		}
	}
	rank := func(k string) int {
		for i, x := range connectors.IdentityKinds {
			if x == k {
				return i
			}
		}
		return len(connectors.IdentityKinds)
	}
	sort.SliceStable(of, func(i, j int) bool {
		if of[i].Matches != of[j].Matches {
			return of[i].Matches > of[j].Matches
		}
		return rank(of[i].Kind) < rank(of[j].Kind)
	})
	return of[0], of[1:]
}

// yamlString writes s as a YAML scalar, quoted when it must be.
func yamlString(s string) string {
	b, err := yaml.Marshal(s)
	if err != nil {
		return fmt.Sprintf("%q", s)
	}
	return strings.TrimSuffix(string(b), "\n")
}

// scanProgress shows how far a connector's scan is: a bar redrawn in place
// on a terminal, a line per collection otherwise.
type scanProgress struct {
	w     io.Writer
	name  string
	tty   bool
	drawn bool
}

func (p *scanProgress) show(done, total int) {
	if !p.tty {
		if done > 0 {
			fmt.Fprintf(p.w, "%s: %d/%d collections or tables read\n", p.name, done, total)
		}
		return
	}
	const width = 30
	filled := width
	if total > 0 {
		filled = width * done / total
	}
	fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d collections or tables ", p.name, strings.Repeat("#", filled), strings.Repeat(" ", width-filled), done, total)
	p.drawn = true
}

// end ends the bar's line.
func (p *scanProgress) end() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
