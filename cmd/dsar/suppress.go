package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"

	"github.com/dsar-project/dsar/config"
	"github.com/dsar-project/dsar/handlers/suppressapi"
)

const suppressSummary = "filter an audience through the suppression list; export it; import a partner's; its key"

// suppressCommand is one subcommand of `dsar suppress`.
type suppressCommand struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error
}

// suppressCommands are the subcommands of `dsar suppress`, in the order
// its help lists them. Add one here.
var suppressCommands = []suppressCommand{
	{"filter", "copy the records of stdin that may be used under a scope to stdout (CSV or NDJSON)", runSuppressFilter},
	{"export", "write the active entries of the list to stdout (NDJSON, hashed), for partners", runSuppressExport},
	{"import", "add a partner's list (NDJSON on stdin) to the list", runSuppressImport},
	{"key", "print the suppression key (base64) that pipelines and partners hash identities with", runSuppressKey},
}

func suppressHelp(w io.Writer) {
	fmt.Fprint(w, "Usage: dsar suppress <subcommand> [flags]\n\n"+
		"The suppression list keeps opted-out and deleted people out of segments\n"+
		"(docs/suppression.md).\n\nSubcommands:\n")
	for _, c := range suppressCommands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'dsar suppress <subcommand> --help' for its flags.")
}

// runSuppress runs `dsar suppress`.
func runSuppress(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		suppressHelp(stdout)
		if len(args) == 0 {
			return usageError("suppress: no subcommand given")
		}
		return nil
	}
	i := slices.IndexFunc(suppressCommands, func(c suppressCommand) bool { return c.name == args[0] })
	if i < 0 {
		suppressHelp(stderr)
		return usageError("suppress: unknown subcommand %q", args[0])
	}
	return suppressCommands[i].run(ctx, args[1:], stdin, stdout, stderr, lookupEnv)
}

const suppressKeyHelp = `Usage: dsar suppress key [--json] [--data-dir DIR]

Prints the suppression key, base64: the key of the suppression hashes that
segmentation pipelines and partners compute to check or exchange identities
without sending them in clear (POST /v1/suppressions/check with "hash", an
exported list). A hash is

    kind + ":" + hex(HMAC-SHA256(key, kind + "\x00" + normalised value))

with the value normalised as dsar does: an email trimmed and lower-cased, a
phone in E.164 (+ and digits), a customer id trimmed. --json prints the key
with the recipe and an example, as GET /v1/suppressions/key answers.

The key is DSAR_SUPPRESSION_KEY when pinned, else derived from the (oldest)
blind index key (DSAR_BLIND_INDEX_KEY and DSAR_BLIND_INDEX_PREVIOUS_KEYS, or
the key file of 'dsar dev' under --data-dir or DSAR_DATA_DIR), and is not it:
it finds no request. Treat it as a secret shared with the pipeline: whoever holds it
can test whether a given person is on the list.

It exits 0 with the key, 2 when no key is configured.
`

// runSuppressKey runs `dsar suppress key`.
func runSuppressKey(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	fs := flag.NewFlagSet("dsar suppress key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the key with the hashing recipe and an example, as JSON")
	dataDir := fs.String("data-dir", "", "read the blind index key file of 'dsar dev' under `DIR` (dev's DSAR_DATA_DIR)")
	fs.Usage = func() {
		fmt.Fprint(stdout, suppressKeyHelp)
		fmt.Fprintln(stdout, "\nFlags:")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError("suppress key: %v", err)
	}
	if fs.NArg() > 0 {
		return usageError("suppress key: unexpected argument %q", fs.Arg(0))
	}
	cfg, err := config.Load(lookupEnv)
	if err != nil {
		return usageError("suppress key: %v", err)
	}
	dir := cfg.DataDir
	if *dataDir != "" {
		dir = *dataDir
	}
	keys, err := loadIndexKeys(cfg, dir, false)
	if err != nil {
		return usageError("suppress key: %v", err)
	}
	key := keys.index.SuppressionKey()
	encoded := base64.StdEncoding.EncodeToString(key[:])
	if !*asJSON {
		_, err := fmt.Fprintln(stdout, encoded)
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(suppressapi.KeyInfo(key))
}
