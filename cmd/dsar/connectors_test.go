package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/testenv/sqlenv"
)

// opsFile is a connectors file for the shop database ${SHOP_DB} at
// ${SHOP_URI}; EXTRA stands for more collections.
const opsFile = `connectors:
  - name: shop
    type: mongodb
    uri: ${SHOP_URI}
    database: ${SHOP_DB}
    collections:
      - name: customers
        match: {email: email}
        provide: {customer_id: _id}
        erase: mask
        mask: {email: email_format, name: null}  # keyed: loads with the commands' throwaway key
        opt_out: {set: {marketing: false}}
      - name: orders
        match: {customer_id: customer_id}
        erase: delete
EXTRA`

// opsShop seeds a shop database and writes a connectors file for it with
// extra collections; it returns the environment that runs dsar on it.
func opsShop(t *testing.T, extra string) []string {
	t.Helper()
	db := testenv.Mongo(t)
	ctx := t.Context()
	seed := func(coll string, docs ...any) {
		if _, err := db.Collection(coll).InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	seed("customers",
		bson.D{{Key: "email", Value: "ada@example.com"}, {Key: "name", Value: "Ada"}, {Key: "work_phone", Value: "020 7946 0958"}},
		bson.D{{Key: "email", Value: "grace@example.com"}, {Key: "name", Value: "Grace"}})
	seed("orders",
		bson.D{{Key: "customer_id", Value: "c-1"}, {Key: "shipping", Value: bson.D{{Key: "email", Value: "ada@example.com"}}}},
		bson.D{{Key: "customer_id", Value: "c-2"}, {Key: "shipping", Value: bson.D{{Key: "email", Value: "grace@example.com"}}}})
	seed("tickets",
		bson.D{{Key: "requester", Value: "ada@example.com"}, {Key: "contact", Value: "+442079460958"}, {Key: "body", Value: "hello"}},
		bson.D{{Key: "requester", Value: "grace@example.com"}, {Key: "contact", Value: "grace@example.com"}},
		bson.D{{Key: "requester", Value: "alan@example.com"}, {Key: "contact", Value: "+15550100999"}})
	seed("settings", bson.D{{Key: "theme", Value: "dark"}})
	path := filepath.Join(t.TempDir(), "connectors.yaml")
	testenv.Must(t, os.WriteFile(path, []byte(strings.Replace(opsFile, "EXTRA", extra, 1)), 0o600))
	return []string{"DSAR_CONNECTORS_FILE=" + path, "SHOP_URI=" + testenv.MongoURI(t), "SHOP_DB=" + db.Name()}
}

// personal are the seeded values no command may print.
var personal = []string{"ada@", "grace@", "alan@", "7946", "+44", "+1555", "Ada", "Grace", "c-1", "c-2"}

func checkNoValues(t *testing.T, outputs ...string) {
	t.Helper()
	for _, out := range outputs {
		for _, v := range personal {
			if strings.Contains(out, v) {
				t.Errorf("output quotes a stored value %q:\n%s", v, out)
			}
		}
	}
}

func TestConnectorsTest(t *testing.T) {
	t.Parallel()
	// On FerretDB the permissions are unknown; a MongoDB without access
	// control grants them.
	perm := "unknown not checked: server does not say (FerretDB reports no privileges)"
	if testenv.RealMongo() {
		perm = "ok"
	}

	env := opsShop(t, `      - name: segments
        match: {members: email}
        erase: {pull: members}
      - name: tickets
        match: {requster: email}
        erase: delete
`)
	out, errOut, code := runOnce(t, env, "connectors", "test")
	if code != 1 {
		t.Fatalf("exit %d; want 1 (a check fails)\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	lines := squeeze(out)
	want := []string{
		"CONNECTOR CHECK RESULT DETAIL",
		"shop reachable ok",
		"shop credentials accepted ok",
		"shop collection customers ok",
		"shop field _id in customers ok",
		"shop field email in customers ok",
		"shop collection orders ok",
		"shop field customer_id in orders ok",
		`shop collection segments FAIL database "` + strings.TrimPrefix(env[2], "SHOP_DB=") + `" has no collection "segments"`,
		"shop collection tickets ok",
		`shop field requster in tickets FAIL no document of tickets has a field "requster" (misspelt?)`,
		"shop permission to find in customers " + perm,
		"shop permission to update in customers " + perm,
		"shop permission to find in orders " + perm,
		"shop permission to remove in orders " + perm,
		"shop permission to find in segments " + perm,
		"shop permission to update in segments " + perm,
		"shop permission to find in tickets " + perm,
		"shop permission to remove in tickets " + perm,
		"",
	}
	if diff := cmp.Diff(want, lines[:len(want)]); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	unknown := 8
	if testenv.RealMongo() {
		unknown = 0
	}
	if got := lines[len(want)]; got != "1 connector: "+itoa(8+8-unknown)+" checks passed, 2 failed, "+itoa(unknown)+" unknown" {
		t.Errorf("summary %q", got)
	}
	checkNoValues(t, out, errOut)

	// A right file passes; --strict fails on what is unknown.
	env = opsShop(t, "")
	checkRuns(t, []cliRun{
		{args: []string{"connectors", "test"}, env: env, code: 0, stdout: " 0 failed"},
		{args: []string{"connectors", "test", "--strict"}, env: env, code: map[bool]int{true: 0, false: 1}[testenv.RealMongo()], stdout: "0 failed"},
	})

	// A server that does not answer fails its first check, within the timeout.
	env = opsShop(t, "")
	env[1] = "SHOP_URI=mongodb://" + testenv.ClosedAddr(t) + "/?serverSelectionTimeoutMS=500"
	checkRuns(t, []cliRun{{args: []string{"connectors", "test"}, env: env, code: 1, stdout: "0 checks passed, 1 failed"}})
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestConnectorsUsage(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	testenv.Must(t, os.WriteFile(bad, []byte("connectors:\n  - name: shop\n    type: mongodb\n    database: shop\n    colections: []\n"), 0o600))
	checkRuns(t, []cliRun{
		{args: []string{"connectors"}, code: 2, stderr: "no subcommand"},
		{args: []string{"connectors", "fix"}, code: 2, stderr: `unknown subcommand "fix"`},
		{args: []string{"connectors", "--help"}, code: 0, stdout: "dsar connectors <subcommand>"},
		{args: []string{"connectors", "test", "--help"}, code: 0, stdout: "DSAR_CONNECTORS_FILE"},
		{args: []string{"connectors", "test"}, code: 2, stderr: "no connectors file: set DSAR_CONNECTORS_FILE or pass --file"},
		{args: []string{"connectors", "test", "--file", bad}, code: 2, stderr: `line 5: unknown setting "colections"`},
		{args: []string{"connectors", "test", "extra"}, code: 2, stderr: `unexpected argument "extra"`},
		{args: []string{"discover"}, code: 2, stderr: "no connectors file"},
		{args: []string{"discover", "--sample", "0", "--file", bad}, code: 2, stderr: "--sample must be from 1 to 100000"},
		{args: []string{"discover", "--help"}, code: 0, stdout: "never stores or prints their"},
		{args: []string{"help"}, code: 0, stdout: "discover"},
	})
}

func TestConnectorsList(t *testing.T) {
	t.Parallel()
	out, errOut, code := runOnce(t, nil, "connectors", "list")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	lines := squeeze(out)
	want := []string{
		"Connector types:",
		"TYPE ACTIONS ALSO REACHES",
		"braze erase, export, opt_out - user profiles of a Braze workspace (REST API): exported, deleted by braze_id, unsubscribed from email and subscription groups",
		"hubspot erase, export, opt_out test contacts in HubSpot's CRM, by primary or additional email: properties, associations, engagements, lists and subscriptions; GDPR delete; opt-out of all email and of lists",
		"klaviyo erase, export, opt_out test profiles in a Klaviyo account, by email or phone: profile and events exported; data-privacy deletion, polled until gone; suppression and list unsubscribe",
		"mailchimp erase, export, opt_out test members of Mailchimp audiences (Marketing API 3.0): export, permanent deletion, unsubscribe and segment tags removed",
		"manual erase, export, opt_out - a task for a named owner, for a system with no API: a signed link to a page where they confirm, upload or report the person absent",
		"mongodb correct, erase, export, opt_out resolve, test, discover collections of a MongoDB or MongoDB-compatible database (FerretDB too)",
		"mysql erase, export, opt_out resolve, test, discover tables of a MySQL or MariaDB database",
		"opendsr erase, export test a processor that speaks OpenDSR 2.0: access and erasure requests passed on, its signed callbacks verified against its certificate, polled when none comes",
		"postgres erase, export, opt_out resolve, test, discover tables of a PostgreSQL database",
		"redis erase, export, opt_out resolve, test keys named after a person, and segments (sets, sorted sets), in Redis",
		"segment erase, opt_in, opt_out test a Twilio Segment workspace: deletion, suppression and unsuppression regulations (Public API), polled until Segment finishes them",
		"stripe erase, export test customers of a Stripe account, by email: customer, charges, invoices and cards (masked) exported; deleted, or redacted by a polled redaction job",
		"webhook erase, export, opt_out - any system behind a URL: signed calls (Standard Webhooks), answered at once or by a signed callback",
		"",
		"No connectors file (set DSAR_CONNECTORS_FILE or pass --file to list its connectors).",
	}
	if diff := cmp.Diff(want, lines[:len(want)]); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}

	// With a file: each connector with the actions its settings give it
	// (no opt_out in a file that sets none).
	env := opsShop(t, "")
	path := strings.TrimPrefix(env[0], "DSAR_CONNECTORS_FILE=")
	noOptOut := filepath.Join(t.TempDir(), "c.yaml")
	data, err := os.ReadFile(path)
	testenv.Must(t, err)
	data = bytes.Replace(data, []byte("        opt_out: {set: {marketing: false}}\n"), nil, 1)
	data = bytes.Replace(data, []byte("name: shop"), []byte("name: archive"), 1)
	both := append(append([]byte{}, mustRead(t, path)...), bytes.TrimPrefix(data, []byte("connectors:\n"))...)
	testenv.Must(t, os.WriteFile(noOptOut, both, 0o600))
	out, errOut, code = runOnce(t, env, "connectors", "list", "--file", noOptOut)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	lines = squeeze(out)
	want = []string{
		"Connectors in " + noOptOut + ":",
		"NAME TYPE ACTIONS ALSO",
		"archive mongodb erase, export resolve, test, discover",
		"shop mongodb erase, export, opt_out resolve, test, discover",
		"",
	}
	if diff := cmp.Diff(want, lines[slices.Index(lines, want[0]):]); diff != "" {
		t.Errorf("list --file (-want +got):\n%s", diff)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	testenv.Must(t, err)
	return b
}

func TestDiscover(t *testing.T) {
	t.Parallel()
	env := opsShop(t, "")
	out, errOut, code := runOnce(t, env, "discover", "--sample", "2")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	// tickets is new (3 documents, 2 read); customers and orders miss a field.
	want := `# dsar discover: read 7 documents or rows from 4 collections or tables of 1 connector (at most 2 each).
# Fields holding identity-shaped values that the connectors file does not cover, as entries
# to merge into it. Review each: the erase strategy of a new collection is yours to choose.
connectors:
  - name: shop
    collections:
      # not in the file
      - name: tickets
        match:
          contact: email  # 1 of 2 sampled; also phone in 1
          requester: email  # 2 of 2 sampled
        erase: delete  # or mask, with mask: {field: strategy}; choose
      # in the file already: add these fields to its match (or to what its erasure masks)
      - name: customers
        match:
          work_phone: phone  # 1 of 2 sampled
      # in the file already: add these fields to its match (or to what its erasure masks)
      - name: orders
        match:
          shipping.email: email  # 2 of 2 sampled
`
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("suggestions (-want +got):\n%s", diff)
	}
	var parsed struct {
		Connectors []struct {
			Name        string `yaml:"name"`
			Collections []struct {
				Name  string            `yaml:"name"`
				Match map[string]string `yaml:"match"`
			} `yaml:"collections"`
		} `yaml:"connectors"`
	}
	if err := yaml.Unmarshal([]byte(out), &parsed); err != nil || len(parsed.Connectors) != 1 || len(parsed.Connectors[0].Collections) != 3 {
		t.Errorf("suggestions are not the YAML of a connectors file: %v %+v", err, parsed)
	}
	for _, l := range []string{
		"shop: 1/4 collections or tables read", "shop: 4/4 collections or tables read",
		"shop: read 7 documents or rows from 4 collections or tables",
		"read 7 documents or rows from 4 collections or tables of 1 connector (at most 2 each)",
	} {
		if !strings.Contains(errOut, l+"\n") {
			t.Errorf("stderr lacks %q:\n%s", l, errOut)
		}
	}
	if strings.Contains(errOut, "\r") {
		t.Errorf("a bar drawn on a pipe:\n%q", errOut)
	}
	checkNoValues(t, out, errOut)

	// A server that does not answer: exit 1, said on stderr.
	env[1] = "SHOP_URI=mongodb://" + testenv.ClosedAddr(t) + "/?serverSelectionTimeoutMS=500"
	checkRuns(t, []cliRun{{args: []string{"discover"}, env: env, code: 1, stderr: "shop: scan failed after 0 collections"}})
	checkRuns(t, []cliRun{{args: []string{"discover", "--connector", "crm"}, env: env, code: 2, stderr: `no connector "crm" in the file (have: shop)`}})
}

// TestScanProgress: on a terminal the bar is redrawn in place and its line
// ended; otherwise a line per collection.
func TestScanProgress(t *testing.T) {
	t.Parallel()
	for _, tty := range []bool{true, false} {
		var b bytes.Buffer
		p := &scanProgress{w: &b, name: "shop", tty: tty}
		for i := range 3 {
			p.show(i, 2)
		}
		p.end()
		want := "shop: 1/2 collections or tables read\nshop: 2/2 collections or tables read\n"
		if tty {
			want = "\rshop [                              ] 0/2 collections or tables " +
				"\rshop [###############               ] 1/2 collections or tables " +
				"\rshop [##############################] 2/2 collections or tables \n"
		}
		if got := b.String(); got != want {
			t.Errorf("tty %v: %q; want %q", tty, got, want)
		}
	}
}

// TestWriteSuggestions: a type without a list of collections gets its
// findings as comments; nothing found says so.
func TestWriteSuggestions(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	writeSuggestions(&b, "read 3", []connectorFindings{{name: "cache", findings: []connectors.Finding{
		{Collection: "user:*", Field: "email", Kind: "email", Matches: 3, Sampled: 3},
	}}})
	want := "# dsar discover: read 3.\n" +
		"# Fields holding identity-shaped values that the connectors file does not cover, as entries\n" +
		"# to merge into it. Review each: the erase strategy of a new collection is yours to choose.\n" +
		"connectors:\n  - name: cache\n    # user:*: field email holds email values (3 of 3 sampled)\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	b.Reset()
	writeSuggestions(&b, "read 0", nil)
	if got := b.String(); got != "# dsar discover: read 0.\n# Nothing found that the connectors file does not cover.\n" {
		t.Errorf("nothing found: %q", got)
	}
}

// TestDiscoverPostgres: dsar discover on a postgres connector suggests
// tables entries, a new table and a column missing from one the file has,
// and prints no value.
func TestDiscoverPostgres(t *testing.T) {
	t.Parallel()
	db := sqlenv.Postgres(t).NewDatabase(t)
	db.Exec(t,
		"CREATE TABLE customers (id int PRIMARY KEY, email varchar(255), work_phone varchar(40))",
		`INSERT INTO customers VALUES (1, 'ada@example.com', '020 7946 0958'), (2, 'grace@example.com', NULL)`,
		"CREATE TABLE tickets (id int PRIMARY KEY, requester varchar(255), body text)",
		`INSERT INTO tickets VALUES (1, 'ada@example.com', 'hello'), (2, 'grace@example.com', 'hi'), (3, 'alan@example.com', '')`)
	path := filepath.Join(t.TempDir(), "connectors.yaml")
	testenv.Must(t, os.WriteFile(path, []byte(`
connectors:
  - name: billing
    type: postgres
    dsn: ${BILLING_DSN}
    tables:
      - name: customers
        match: {email: email}
        erase: delete
`), 0o600))
	out, errOut, code := runOnce(t, []string{"DSAR_CONNECTORS_FILE=" + path, "BILLING_DSN=" + db.DSN}, "discover", "--sample", "2")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	want := `# dsar discover: read 4 documents or rows from 2 collections or tables of 1 connector (at most 2 each).
# Fields holding identity-shaped values that the connectors file does not cover, as entries
# to merge into it. Review each: the erase strategy of a new collection is yours to choose.
connectors:
  - name: billing
    tables:
      # not in the file
      - name: tickets
        match:
          requester: email  # 2 of 2 sampled
        erase: delete  # or mask, with mask: {field: strategy}; choose
      # in the file already: add these fields to its match (or to what its erasure masks)
      - name: customers
        match:
          work_phone: phone  # 1 of 2 sampled
`
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("suggestions (-want +got):\n%s", diff)
	}
	checkNoValues(t, out, errOut)
}
