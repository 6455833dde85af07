package sqldb_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/sqldb"
	"github.com/dsar-project/dsar/internal/testenv/sqlenv"
)

// crmSchema has what the load checks need: a table with a key, one
// without, columns of several types.
func crmSchema(kind string) []string {
	return []string{
		`CREATE TABLE people (id int PRIMARY KEY, email varchar(255) NOT NULL, short varchar(20),
			born date, code int, note text, flag boolean)`,
		`CREATE TABLE nokey (email varchar(255), note text)`,
	}
}

// TestLoadSchemaErrors checks that every name the file gives is checked
// against the live schema when it is loaded, and that each problem is an
// error at its line, all of them at once.
func TestLoadSchemaErrors(t *testing.T) {
	// Line 1 is "connectors:".
	const file = `connectors:
  - name: crm
    type: ${TYPE}
    dsn: ${DSN}
    tables:
      - name: "customers; DROP TABLE people"
        match: {email: email}
        erase: delete
      - name: People
        match: {email: email}
        erase: delete
      - name: people
        match: {emial: email, born: customer_id}
        provide: {customer_id: idd}
        erase: mask
        mask:
          code: hmac
          short: email_format
          email: null
          note: random
          flag: {fixed: "yes"}
        opt_out: {set: {marketng: false, code: "x"}}
      - name: nokey
        match: {email: email}
        erase: mask
        mask: {note: null}
`
	want := []struct {
		line int
		text string
	}{
		{6, `table "customers; DROP TABLE people": no such table`},
		{9, `table "People": no such table in schema`},
		{9, `(did you mean "people"?)`},
		{13, `match: no such column "emial"`},
		{13, `match: column "born" is date; a match column holds text, an integer or a uuid`},
		{14, `provide customer_id: no such column "idd"`},
		{17, `mask: code: hmac masks text only`},
		{18, `mask: short: email_format writes 33 characters, and the column holds 20`},
		{19, `mask: email: the column is NOT NULL, so null cannot mask it`},
		{21, `mask: flag: yes (string) does not fit the column`},
		{22, `opt_out: set: no such column "marketng"`},
		{22, `opt_out: set: code: x (string) does not fit the column`},
		{25, `table "nokey": erase: mask needs a primary key`},
	}
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		db := srv.NewDatabase(t)
		db.Exec(t, crmSchema(srv.Kind)...)
		_, err := parse(t, file, map[string]string{"TYPE": typ, "DSN": db.DSN})
		if err == nil {
			t.Fatal("parse: no error")
		}
		msg := err.Error()
		lines := strings.Split(msg, "\n")
		for _, w := range want {
			found := false
			for _, l := range lines {
				if strings.Contains(l, fmt.Sprintf("line %d: ", w.line)) && strings.Contains(l, w.text) {
					found = true
				}
			}
			if !found {
				t.Errorf("no error at line %d saying %q in:\n%s", w.line, w.text, msg)
			}
		}
		if len(lines) != len(want)-1 { // "did you mean" is part of line 9's error
			t.Errorf("got %d errors; want %d:\n%s", len(lines), len(want)-1, msg)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM people"); n != 0 {
			t.Errorf("people has %d rows", n) // still there, untouched
		}
	})
}

// TestLoadValidation checks the problems found before the database is
// asked, each at its line.
func TestLoadValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, want string
	}{
		{
			name: "unknown setting",
			file: `connectors:
  - name: crm
    type: postgres
    dsn: ${DSN}
    tabels: []
`,
			want: `line 5: unknown setting "tabels"`,
		},
		{
			name: "unknown table setting",
			file: `connectors:
  - name: crm
    type: postgres
    dsn: ${DSN}
    tables:
      - name: people
        match: {email: email}
        erase: delete
        opt-out: delete
`,
			want: `line 9: unknown setting "opt-out"`,
		},
		{
			name: "no dsn",
			file: `connectors:
  - name: crm
    type: mysql
    tables:
      - {name: people, match: {email: email}, erase: delete}
`,
			want: `line 2: dsn: required`,
		},
		{
			name: "several problems",
			file: `connectors:
  - name: crm
    type: postgres
    dsn: ${DSN}
    tables:
      - name: people
        match: {email: mail}
        erase: {set: {a: 1}}
      - name: people
        match: {email: email}
        mask: {email: null}
      - name: orders
        match: {customer_id: customer_id}
        erase: mask
        opt_out: mask
`,
			want: `line 7: table "people": match: column "email" has unknown identity kind "mail" (known: advertising_id, customer_id, device_id, email, phone)
line 8: table "people": erase: set is for opt_out; erase with delete or mask
line 9: table "people": listed twice
line 9: table "people": erase: required: delete or mask
line 11: table "people": mask is only used with erase: mask
line 14: table "orders": erase: mask needs the columns to mask in mask: {COLUMN: STRATEGY}
line 15: table "orders": opt_out: mask is for erase; opt out with delete or {set: {COLUMN: VALUE}}`,
		},
		{
			name: "unknown strategy",
			file: `connectors:
  - name: crm
    type: postgres
    dsn: ${DSN}
    tables:
      - name: people
        match: {email: email}
        erase: truncate
`,
			want: `line 8: unknown strategy "truncate": want delete, mask or {set: {COLUMN: VALUE}}`,
		},
		{
			name: "unknown mask strategy",
			file: `connectors:
  - name: crm
    type: postgres
    dsn: ${DSN}
    tables:
      - name: people
        match: {email: email}
        erase: mask
        mask: {email: sha1}
`,
			want: `line 9: unknown mask strategy "sha1"`,
		},
		{
			name: "bad dsn",
			file: `connectors:
  - name: crm
    type: mysql
    dsn: "not a dsn ${DSN}"
    tables:
      - {name: people, match: {email: email}, erase: delete}
`,
			want: `line 4: dsn: not a go-sql-driver/mysql DSN`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parse(t, tt.file, map[string]string{"DSN": "postgres://nowhere.invalid/x"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parse: %v\nwant an error containing:\n%s", err, tt.want)
			}
		})
	}
}

// TestLoadNoMaskKey checks that hmac and email_format are refused, at their
// line, in a process that has no mask key.
func TestLoadNoMaskKey(t *testing.T) {
	t.Parallel()
	file := `connectors:
  - name: crm
    type: postgres
    dsn: postgres://nowhere.invalid/x
    tables:
      - name: people
        match: {email: email}
        erase: mask
        mask: {email: email_format, note: null}
`
	_, err := connectors.Parse(context.Background(), []byte(file),
		connectors.Types{sqldb.TypePostgres: sqldb.PostgresFactory(connectors.Deps{})}, func(string) (string, bool) { return "", false })
	want := `line 9: table "people": mask: email: email_format needs the service's mask key`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("parse: %v; want %q", err, want)
	}
}

// TestLoadUnreachable checks that a server that does not answer at start-up
// is an error naming the dsn's line, within the caller's deadline.
func TestLoadUnreachable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ typ, dsn string }{
		{sqldb.TypePostgres, "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=1"},
		{sqldb.TypeMySQL, "root@tcp(127.0.0.1:1)/x?timeout=1s"},
	} {
		file := fmt.Sprintf("connectors:\n  - name: crm\n    type: %s\n    dsn: %q\n    tables:\n      - {name: people, match: {email: email}, erase: delete}\n", tt.typ, tt.dsn)
		_, err := parse(t, file, nil)
		if err == nil || !strings.Contains(err.Error(), "line 4: cannot read the schema") || errors.Is(err, connectors.ErrPermanent) {
			t.Errorf("%s: parse: %v; want a transient error at line 4", tt.typ, err)
		}
	}
}

// TestLoadCycle checks that tables whose foreign keys form a cycle are a
// load error when one of them deletes, and are loaded when they only mask.
func TestLoadCycle(t *testing.T) {
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		db := srv.NewDatabase(t)
		db.Exec(t,
			`CREATE TABLE a (id int PRIMARY KEY, email varchar(100), b_id int)`,
			`CREATE TABLE b (id int PRIMARY KEY, email varchar(100), a_id int, FOREIGN KEY (a_id) REFERENCES a (id))`,
			`ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b (id)`,
		)
		file := `connectors:
  - name: crm
    type: ${TYPE}
    dsn: ${DSN}
    tables:
      - {name: a, match: {email: email}, erase: ERASE_A}
      - {name: b, match: {email: email}, erase: mask, mask: {email: null}}
`
		env := map[string]string{"TYPE": typ, "DSN": db.DSN}
		_, err := parse(t, strings.Replace(file, "ERASE_A", "delete", 1), env)
		want := "line 5: the foreign keys of tables a, b reference each other in a cycle"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parse with a deleting: %v; want %q", err, want)
		}
		if _, err := parse(t, strings.Replace(file, "ERASE_A", "mask, mask: {email: null}", 1), env); err != nil {
			t.Errorf("parse with both masking: %v", err)
		}
	})
}
