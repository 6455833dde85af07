package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strings"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/internal/csvsafe"
)

const datamapSummary = "print the record of processing activities the connectors file declares (dsar datamap)"

const datamapHelp = `Usage: dsar datamap [--file FILE] [--format markdown|csv]

Prints the record of processing activities (GDPR Art. 30) that the connectors
file declares: for each connector, in the file's order, its system's purpose,
categories of personal data, recipients, retention, source and legal basis,
as its data_map says (see docs/connectors.md). What an entry does not declare
is printed as "not declared", never guessed. A record of processing also
names the controller and its contact details, any transfer to a third
country and the security measures: the connectors file holds none of them,
so add them where the record is kept.

--format markdown (the default) prints a Markdown document with a table;
--format csv a CSV file with a header row, lists joined by "; ".

It reads the file only: it connects to no system, and needs no variable but
those the data maps use themselves. It exits 0 with the record, 2 on a usage
error or a bad file (the error names its line).

The file is --file (or --connectors), else DSAR_CONNECTORS_FILE (also
connectors_file in DSAR_CONFIG_FILE).
`

// runDatamap runs `dsar datamap`.
func runDatamap(_ context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	cmd := newConnectorsCommand("datamap", datamapHelp, stdout, stderr)
	cmd.fs.StringVar(cmd.file, "connectors", "", "the same as --file")
	format := cmd.fs.String("format", "markdown", "`markdown` or csv")
	if err := cmd.parse(args); err != nil {
		return err
	}
	if *format != "markdown" && *format != "csv" {
		return usageError("datamap: --format %q: want markdown or csv", *format)
	}
	_, path, err := cmd.path(lookupEnv, true)
	if err != nil {
		return err
	}
	declared, err := connectors.ReadDataMaps(path, lookupEnv)
	if err != nil {
		return exitError{code: exitUsage, err: fmt.Errorf("datamap: %w", err)}
	}
	rows := processingRows(declared)
	if *format == "csv" {
		return writeProcessingCSV(stdout, rows)
	}
	return writeProcessingMarkdown(stdout, path, rows)
}

// processingColumns are the columns of the record of processing.
var processingColumns = []string{"system", "type", "purpose", "categories of personal data", "recipients", "retention", "source", "legal basis"}

// processingRows are the rows of the record of processing, one per
// connector, with "not declared" for what its data map does not declare.
func processingRows(declared []connectors.Declared) [][]string {
	const none = "not declared"
	or := func(s string) string {
		if s == "" {
			return none
		}
		return s
	}
	list := func(l []string) string { return or(strings.Join(l, "; ")) }
	rows := make([][]string, 0, len(declared))
	for _, d := range declared {
		dm := d.DataMap
		if dm == nil {
			dm = &connectors.DataMap{}
		}
		basis := or(dm.LegalBasis)
		if a := connectors.LegalBasisArticle(dm.LegalBasis); a != "" {
			basis += " (" + a + ")"
		}
		rows = append(rows, []string{d.Name, d.Type, or(dm.Purpose), list(dm.Categories), list(dm.Recipients), or(dm.Retention), or(dm.Source), basis})
	}
	return rows
}

func writeProcessingCSV(w io.Writer, rows [][]string) error {
	cw := csv.NewWriter(w)
	var safe []string
	for _, r := range append([][]string{processingColumns}, rows...) {
		safe = csvsafe.Row(safe, r)
		if err := cw.Write(safe); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// markdownCell escapes what would break a Markdown table's cell (a pipe, a
// backslash before one, a line break) or make markup or HTML of text. An
// underscore inside a word makes no emphasis in GitHub's Markdown, so
// legal_obligation is written as it is.
var markdownCell = strings.NewReplacer("|", `\|`, "\r\n", " ", "\n", " ", "\r", " ", `\`, `\\`, "<", "&lt;", ">", "&gt;", "*", `\*`, "`", "\\`", "[", `\[`, "]", `\]`)

func writeProcessingMarkdown(w io.Writer, path string, rows [][]string) error {
	var b strings.Builder
	b.WriteString("# Record of processing activities\n\n")
	fmt.Fprintf(&b, "What each system reached by dsar does with personal data (GDPR Art. 30), as the data maps of %s declare it.\n", markdownCell.Replace(path))
	b.WriteString("Add the controller's name and contact details, transfers to third countries and the security measures, which the connectors file does not hold.\n\n")
	if len(rows) == 0 {
		b.WriteString("The file declares no connector.\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	line := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + markdownCell.Replace(c) + " |")
		}
		b.WriteString("\n")
	}
	line(processingColumns)
	b.WriteString(strings.Repeat("| --- ", len(processingColumns)) + "|\n")
	for _, r := range rows {
		line(r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
