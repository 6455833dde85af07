// Command dsar runs the data subject rights request handler.
//
//	dsar dev [--demo]   API, workers and scheduler in one process; embedded stores by default
//	dsar serve          the HTTP API
//	dsar worker         the queue workers that run connector jobs
//	dsar scheduler      the periodic checks (the sweep)
//	dsar audit verify   check every request's audit chain (exit 1 when one is broken)
//	dsar report --from YYYY-MM-DD --to YYYY-MM-DD   the compliance summary of a period
//	dsar report segments --from YYYY-MM-DD --to YYYY-MM-DD   the removals from segments of a period
//	dsar requests import FILE.csv   file a CSV of requests through the bulk API
//	dsar migrate --from SOURCE --to TARGET   copy a store into another (FerretDB or MongoDB to SQLite, SQLite to MongoDB)
//	dsar connectors list|test   the connector types; check the configured connectors against their systems
//	dsar discover   scan the configured databases for personal data the connectors file misses
//	dsar datamap [--format csv]   the record of processing activities the connectors file declares
//	dsar suppress filter|export|import|key   filter an audience through the suppression list; export it; import a partner's; print its key
//	dsar keys new|rotate|pin   make a master key; re-wrap data keys or re-hash the blind index
//
// Settings come from DSAR_* environment variables; `dsar <command> --help`
// lists those the command reads.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/dsar-project/dsar/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "dsar:", err)
			os.Exit(exitCode(err))
		}
	}
}

var commands = []struct {
	mode    config.Mode
	summary string
	detail  string
}{
	{config.ModeDev, "run API, workers and scheduler in one process (development)",
		"Runs the HTTP API, the queue workers and the scheduler in one process.\n" +
			"Without DSAR_MONGO_URI it keeps its store in one SQLite file under DSAR_DATA_DIR,\n" +
			"so requests survive a restart; without DSAR_REDIS_ADDR an in-process Redis (development only).\n" +
			"With --demo it also seeds a demo shop and its connectors file and prints curl commands to try."},
	{config.ModeServe, "run the HTTP API", "Runs the HTTP API. Needs a real Redis; MongoDB, or the embedded store on one machine.\n" +
		"Serves HTTPS with DSAR_TLS_CERT_FILE and DSAR_TLS_KEY_FILE (reloaded on SIGHUP); plain HTTP\n" +
		"only on a loopback DSAR_HTTP_ADDR or with DSAR_BEHIND_TLS_PROXY=true."},
	{config.ModeWorker, "run the queue workers", "Runs the workers that fan requests out and run connector jobs.\n" +
		"Needs a real Redis and DSAR_CONNECTORS_FILE; MongoDB, or the embedded store on one machine.\n" +
		"DSAR_HEALTH_ADDR serves /healthz, /readyz and /metrics for probes."},
	{config.ModeScheduler, "run the periodic checks", "Runs the scheduler that enqueues the periodic sweep, which re-drives\nwork whose queue task was lost. Run one; a second is harmless, as the sweep is idempotent.\n" +
		"DSAR_HEALTH_ADDR serves /healthz, /readyz and /metrics for probes."},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "dsar handles data subject rights requests (access, deletion, opt-out).")
	fmt.Fprintln(w, "\nUsage: dsar <command> [flags]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.mode, c.summary)
	}
	fmt.Fprintf(w, "  %-10s %s\n", "audit", auditSummary)
	fmt.Fprintf(w, "  %-10s %s\n", "report", reportSummary)
	fmt.Fprintf(w, "  %-10s %s\n", "requests", requestsSummary)
	fmt.Fprintf(w, "  %-10s %s\n", "migrate", migrateSummary)
	fmt.Fprintf(w, "  %-10s %s\n", "connectors", connectorsSummary)
	fmt.Fprintf(w, "  %-10s %s\n", "discover", discoverSummary)
	fmt.Fprintf(w, "  %-10s %s\n", "datamap", datamapSummary)
	fmt.Fprintf(w, "  %-10s %s\n", "suppress", suppressSummary)
	fmt.Fprintf(w, "  %-10s %s\n", "keys", keysSummary)
	fmt.Fprintln(w, "\nRun 'dsar <command> --help' for its flags and settings.")
}

// run parses the command line and runs one command until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	if args[0] == "audit" { // a one-shot tool, not a long-running mode
		return runAudit(ctx, args[1:], stdout, stderr, lookupEnv)
	}
	if args[0] == "report" { // a one-shot tool too
		return runReport(ctx, args[1:], stdout, stderr, lookupEnv)
	}
	if args[0] == "requests" {
		return runRequests(ctx, args[1:], stdout, stderr, lookupEnv)
	}
	if args[0] == "migrate" {
		return runMigrate(ctx, args[1:], stdout, stderr, lookupEnv)
	}
	if args[0] == "connectors" {
		return runConnectors(ctx, args[1:], stdout, stderr, lookupEnv)
	}
	if args[0] == "discover" {
		return runDiscover(ctx, args[1:], stdout, stderr, lookupEnv)
	}
	if args[0] == "datamap" {
		return runDatamap(ctx, args[1:], stdout, stderr, lookupEnv)
	}
	if args[0] == "keys" {
		return runKeys(ctx, args[1:], stdout, stderr, lookupEnv)
	}
	if args[0] == "suppress" {
		return runSuppress(ctx, args[1:], os.Stdin, stdout, stderr, lookupEnv)
	}
	for _, c := range commands {
		if args[0] != string(c.mode) {
			continue
		}
		fs := flag.NewFlagSet("dsar "+args[0], flag.ContinueOnError)
		fs.SetOutput(stdout)
		demo := false
		if c.mode == config.ModeDev {
			fs.BoolVar(&demo, "demo", false, "seed a demo shop, point the connectors at it and print curl commands to try")
		}
		fs.Usage = func() { commandHelp(stdout, fs, c.mode, c.detail) }
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("%s: unexpected argument %q", c.mode, fs.Arg(0))
		}
		cfg, err := config.Load(lookupEnv)
		if err != nil {
			return err
		}
		if err := cfg.Validate(c.mode); err != nil {
			return err
		}
		return start(ctx, c.mode, cfg, demo, stdout, stderr, lookupEnv)
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func commandHelp(w io.Writer, fs *flag.FlagSet, m config.Mode, detail string) {
	fmt.Fprintf(w, "Usage: dsar %s [flags]\n\n%s\n", m, detail)
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nFlags:")
		fs.PrintDefaults()
	}
	fmt.Fprintln(w, "\nSettings (environment variables):")
	for _, s := range config.ForMode(m) {
		def := ""
		if s.Default != "" {
			def = " (default " + s.Default + ")"
		}
		fmt.Fprintf(w, "  %s%s\n      %s\n", s.Env, def, strings.ReplaceAll(s.Help, "\n", "\n      "))
	}
}
