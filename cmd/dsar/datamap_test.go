package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ropaFile declares two connectors with data maps, one with a pipe and a
// formula in its text, and one without.
const ropaFile = `connectors:
  - name: shop
    type: mongodb
    uri: mongodb://shop:${SHOP_PASSWORD}@db.example.com/
    data_map:
      purpose: Orders | support
      categories: [contact details, order history]
      recipients: [parcel carrier]
      retention: 6 years
      source: the person
      legal_basis: contract
  - name: crm
    type: postgres
  - name: ads
    type: webhook
    data_map: {purpose: "=HYPERLINK(\"http://x\")", legal_basis: consent}
`

func TestDatamap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "connectors.yaml")
	if err := os.WriteFile(path, []byte(ropaFile), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("connectors:\n  - name: shop\n    type: mongodb\n    data_map:\n      legal_basis: because\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	markdown := "# Record of processing activities\n\n" +
		"What each system reached by dsar does with personal data (GDPR Art. 30), as the data maps of " + path + " declare it.\n" +
		"Add the controller's name and contact details, transfers to third countries and the security measures, which the connectors file does not hold.\n\n" +
		"| system | type | purpose | categories of personal data | recipients | retention | source | legal basis |\n" +
		"| --- | --- | --- | --- | --- | --- | --- | --- |\n" +
		"| shop | mongodb | Orders \\| support | contact details; order history | parcel carrier | 6 years | the person | contract (GDPR Art. 6(1)(b)) |\n" +
		"| crm | postgres | not declared | not declared | not declared | not declared | not declared | not declared |\n" +
		"| ads | webhook | =HYPERLINK(\"http://x\") | not declared | not declared | not declared | not declared | consent (GDPR Art. 6(1)(a)) |\n"
	csv := "system,type,purpose,categories of personal data,recipients,retention,source,legal basis\n" +
		"shop,mongodb,Orders | support,contact details; order history,parcel carrier,6 years,the person,contract (GDPR Art. 6(1)(b))\n" +
		"crm,postgres,not declared,not declared,not declared,not declared,not declared,not declared\n" +
		"ads,webhook,\"'=HYPERLINK(\"\"http://x\"\")\",not declared,not declared,not declared,not declared,consent (GDPR Art. 6(1)(a))\n"
	fromEnv := func(file string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			if k == "DSAR_CONNECTORS_FILE" && file != "" {
				return file, true
			}
			return "", false // SHOP_PASSWORD is not needed: no connector is built
		}
	}
	for _, tt := range []struct {
		name    string
		args    []string
		file    string // DSAR_CONNECTORS_FILE
		want    string
		wantErr string
		code    int
	}{
		{name: "markdown from the environment", args: []string{"datamap"}, file: path, want: markdown},
		{name: "markdown from the flag", args: []string{"datamap", "--connectors", path, "--format", "markdown"}, want: markdown},
		{name: "csv", args: []string{"datamap", "--format", "csv"}, file: path, want: csv},
		{name: "flag wins", args: []string{"datamap", "--connectors", path}, file: bad, want: markdown},
		{name: "bad legal basis", args: []string{"datamap", "--connectors", bad}, code: 2,
			wantErr: `datamap: connectors file ` + bad + `: line 5: connector "shop": data_map: legal_basis "because": want one of the bases of GDPR Art. 6(1): consent, contract, legal_obligation, vital_interests, public_task, legitimate_interests`},
		{name: "no file", args: []string{"datamap"}, code: 2, wantErr: "datamap: no connectors file: set DSAR_CONNECTORS_FILE or pass --file"},
		{name: "--file", args: []string{"datamap", "--file", path}, want: markdown},
		{name: "missing file", args: []string{"datamap", "--connectors", filepath.Join(dir, "nope.yaml")}, code: 2, wantErr: "no such file or directory"},
		{name: "bad format", args: []string{"datamap", "--format", "pdf"}, file: path, code: 2, wantErr: `datamap: --format "pdf": want markdown or csv`},
		{name: "argument", args: []string{"datamap", "extra"}, file: path, code: 2, wantErr: `datamap: unexpected argument "extra"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr, fromEnv(tt.file))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || exitCode(err) != tt.code {
					t.Fatalf("err = %v (exit %d); want one with %q, exit %d", err, exitCode(err), tt.wantErr, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("datamap: %v", err)
			}
			if diff := cmp.Diff(tt.want, stdout.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDatamapDemo: the demo connectors file declares the shop's data map,
// which dsar datamap prints, and its help says what the command does.
func TestDatamapDemo(t *testing.T) {
	t.Parallel()
	path, err := writeDemoConnectors(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"datamap", "--connectors", path}, &stdout, &stdout, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	if out := stdout.String(); !strings.Contains(out, "| shop | mongodb | Selling and delivering orders") || strings.Contains(out, "not declared") {
		t.Errorf("datamap of the demo file:\n%s", out)
	}
	stdout.Reset()
	if err := run(context.Background(), []string{"datamap", "--help"}, &stdout, &stdout, nil); !errors.Is(err, flag.ErrHelp) ||
		!strings.Contains(stdout.String(), "GDPR Art. 30") || !strings.Contains(stdout.String(), "-format") {
		t.Errorf("datamap --help: %v\n%s", err, stdout.String())
	}
	stdout.Reset()
	_ = run(context.Background(), []string{"help"}, &stdout, &stdout, nil)
	if !strings.Contains(stdout.String(), "datamap") {
		t.Errorf("usage does not list datamap:\n%s", stdout.String())
	}
}
