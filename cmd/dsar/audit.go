package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store/mongostore"
)

// Exit statuses of `dsar audit verify`.
const (
	exitBroken = 1 // a chain does not verify
	exitUsage  = 2 // bad usage, settings or store
)

// exitError is an error that asks for a particular exit status.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// exitCode is the exit status for an error run returned: 1 unless it asks
// for another.
func exitCode(err error) int {
	var e exitError
	if errors.As(err, &e) {
		return e.code
	}
	return 1
}

func usageError(format string, args ...any) error {
	return exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

const auditSummary = "check the audit trail (dsar audit verify)"

const auditHelp = `Usage: dsar audit <subcommand> [flags]

Every event of a request (filed, status changes, jobs, exports, downloads,
extensions, purges) is kept in the audit_events collection, each event
hash-chained to the one before it, so an edited, deleted or reordered event
shows.

Subcommands:
  verify     check every request's chain; exits 1 when one is broken

Run 'dsar audit verify --help' for its flags and settings.
`

const verifyHelp = `Usage: dsar audit verify [--data-dir DIR]

Reads every request's audit chain and checks it: each event's hash must match
its content and the hash of the event before it, with no gap in the sequence.
It prints one line per broken chain (request id, the first event that does not
verify and why; never the events' content) and a summary, and exits 0 when
every chain verifies, 1 when one is broken, 2 on a usage, settings or store
error. It only reads: it creates no index or collection.

It cannot see a request's last events deleted (the rest of the chain still
verifies), nor a chain rewritten, hashes recomputed, by someone able to write
the store.

The store is DSAR_MONGO_URI and DSAR_MONGO_DB. For the embedded store of
'dsar dev', leave DSAR_MONGO_URI unset and pass --data-dir with dev's
DSAR_DATA_DIR: the command then opens the embedded store's file, DIR/dsar.db,
itself. It may do so while 'dsar dev' runs: SQLite lets the two processes
share the file (WAL, with locks), and since the command writes nothing, dev's
view of its requests stays right. Events appended while it reads may or may
not be counted.
`

// runAudit runs `dsar audit ...`.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditHelp)
		return usageError("audit: no subcommand given")
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, auditHelp)
		return nil
	case "verify":
		return auditVerify(ctx, args[1:], stdout, stderr, lookupEnv)
	}
	fmt.Fprint(stderr, auditHelp)
	return usageError("audit: unknown subcommand %q", args[0])
}

// auditVerify runs `dsar audit verify`.
func auditVerify(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	cmd := newReadCommand("audit verify", verifyHelp, "check", "the audit_events collection", stdout, stderr)
	if err := cmd.parse(args); err != nil {
		return err
	}
	store, closeStore, err := cmd.open(ctx, lookupEnv, mongostore.AuditCollection)
	if err != nil {
		return err
	}
	defer closeStore()

	var chains, events, broken int
	err = store.EachAuditChain(ctx, func(requestID string, chain []dsr.AuditEvent) error {
		c := dsr.VerifyChain(chain)
		chains++
		events += c.Events
		if !c.OK {
			broken++
			fmt.Fprintf(stdout, "broken: request %s at seq %d: %s\n", requestID, c.BrokenAt, c.Problem)
		}
		return nil
	})
	if err != nil {
		return exitError{code: exitUsage, err: fmt.Errorf("audit verify: %w", err)}
	}
	fmt.Fprintf(stdout, "%d chains, %d events checked, %d broken\n", chains, events, broken)
	if broken > 0 {
		return exitError{code: exitBroken, err: fmt.Errorf("audit verify: %d of %d chains broken", broken, chains)}
	}
	return nil
}
