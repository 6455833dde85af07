package sqldb_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/internal/testenv/sqlenv"
)

// writer keeps exported records as JSON text.
type writer struct {
	records []string
	tables  []string
}

func (w *writer) WriteRecord(_ context.Context, table string, doc any) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	w.records = append(w.records, string(b))
	w.tables = append(w.tables, table)
	return nil
}

func subject(ids ...string) connectors.Subject {
	var s connectors.Subject
	for i := 0; i+1 < len(ids); i += 2 {
		s.Identities = append(s.Identities, connectors.Identity{Kind: ids[i], Value: ids[i+1]})
	}
	return s
}

// TestHostileIdentities checks that identities are compared by equality
// only, as arguments: quotes, semicolons, LIKE's wildcards, backslashes,
// case and trailing spaces (which MySQL's collations would fold), NULs and
// very long values reach exactly the rows holding them, and nothing else.
func TestHostileIdentities(t *testing.T) {
	long := strings.Repeat("x", 100_000) + "@example.com"
	stored := []string{
		"o'brien@example.com",
		`x"; DROP TABLE contacts; --@example.com`,
		"a%b@example.com",
		"a_b@example.com",
		"axb@example.com",
		`back\slash@example.com`,
		"ada@example.com",
		"Ada@Example.com",
		"ada@example.com ",
		"zoë@example.com",
		long,
	}
	tests := []struct {
		name  string
		given string
		want  []string // the stored emails it must reach
	}{
		{"quote", "o'brien@example.com", []string{"o'brien@example.com"}},
		{"sql", `x"; DROP TABLE contacts; --@example.com`, []string{`x"; DROP TABLE contacts; --@example.com`}},
		{"percent", "a%b@example.com", []string{"a%b@example.com"}},
		{"underscore", "a_b@example.com", []string{"a_b@example.com"}},
		{"backslash", `back\slash@example.com`, []string{`back\slash@example.com`}},
		{"exact case and spaces", "ada@example.com", []string{"ada@example.com"}},
		{"upper case", "ADA@EXAMPLE.COM", nil},
		{"accent", "zoe@example.com", nil},
		{"wildcard only", "%", nil},
		{"nul", "ada@example.com\x00", nil},
		{"long", long, []string{long}},
		{"longer still", long + "x", nil},
		{"invalid utf-8", "ada@example.com\xff", nil},
	}
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				db := srv.NewDatabase(t)
				charset := ""
				if srv.Kind == "mysql" {
					charset = " DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_general_ci" // case-insensitive, PAD SPACE
				}
				text := "text"
				if srv.Kind == "mysql" {
					text = "longtext"
				}
				db.Exec(t, `CREATE TABLE contacts (id int PRIMARY KEY, email `+text+` NOT NULL)`+charset)
				for i, e := range stored {
					q := fmt.Sprintf("INSERT INTO contacts (id, email) VALUES (%d, $1)", i+1)
					if srv.Kind == "mysql" {
						q = strings.Replace(q, "$1", "?", 1)
					}
					if _, err := db.DB.ExecContext(t.Context(), q, e); err != nil {
						t.Fatalf("seed %.40q: %v", e, err)
					}
				}
				c := mustConnector(t, typ, db, `
connectors:
  - name: crm
    type: ${TYPE}
    dsn: ${DSN}
    tables:
      - {name: contacts, match: {email: email}, erase: delete}
`)
				s := subject("email", tt.given)
				w := &writer{}
				res, err := c.(connectors.Exporter).Export(t.Context(), s, w)
				if err != nil {
					t.Fatalf("Export: %v", err)
				}
				var got []string
				for _, r := range w.records {
					var rec struct{ Email string }
					if err := json.Unmarshal([]byte(r), &rec); err != nil {
						t.Fatal(err)
					}
					got = append(got, rec.Email)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("Export reached (-want +got):\n%s", diff)
				}
				if res.Records != int64(len(tt.want)) {
					t.Errorf("Export reported %d records; want %d", res.Records, len(tt.want))
				}
				res, err = c.(connectors.Eraser).Erase(t.Context(), s)
				if err != nil {
					t.Fatalf("Erase: %v", err)
				}
				if res.Records != int64(len(tt.want)) {
					t.Errorf("Erase reported %d records; want %d", res.Records, len(tt.want))
				}
				if n := db.Count(t, "SELECT COUNT(*) FROM contacts"); n != len(stored)-len(tt.want) {
					t.Errorf("%d rows left; want %d", n, len(stored)-len(tt.want))
				}
			})
		}
	})
}

// TestIntegerIDs checks that a customer_id matches an integer column only in
// its canonical decimal form and range: "007" is not another person's 7,
// and a value out of the column's range is no error.
func TestIntegerIDs(t *testing.T) {
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		db := srv.NewDatabase(t)
		db.Exec(t, `CREATE TABLE orders (id int PRIMARY KEY, customer_id smallint, big bigint)`,
			`INSERT INTO orders (id, customer_id, big) VALUES (1, 7, 9000000000000000000), (2, 0, NULL), (3, -7, NULL)`)
		c := mustConnector(t, typ, db, `
connectors:
  - name: shop
    type: ${TYPE}
    dsn: ${DSN}
    tables:
      - {name: orders, match: {customer_id: customer_id, big: customer_id}, erase: delete}
`)
		for _, tt := range []struct {
			given string
			want  int64
		}{
			{"7", 1}, {"-7", 1}, {"0", 1}, {"007", 0}, {"+7", 0}, {"-0", 0}, {"7.0", 0}, {" 7", 0},
			{"99999", 0}, {"99999999999999999999999", 0}, {"9000000000000000000", 1}, {"cus_7", 0},
		} {
			res, err := c.(connectors.Exporter).Export(t.Context(), subject("customer_id", tt.given), &writer{})
			if err != nil {
				t.Errorf("customer_id %q: Export: %v", tt.given, err)
				continue
			}
			if res.Records != tt.want {
				t.Errorf("customer_id %q: Export found %d records; want %d", tt.given, res.Records, tt.want)
			}
		}
	})
}

// TestExportValues checks that each kind of value is exported as JSON
// without loss, in the table's column order: times in RFC 3339, dates
// alone, decimals with every digit, bytes in base64, JSON as JSON.
func TestExportValues(t *testing.T) {
	tests := []struct {
		kind   string
		create string
		insert string
		want   string
	}{
		{
			kind: "postgres",
			create: `CREATE TABLE things (zeta text, id int PRIMARY KEY, email text, amount numeric(40,10), ratio float8,
				nan float8, at timestamptz, day date, raw bytea, doc jsonb, ok boolean, uid uuid, big bigint, none text)`,
			insert: `INSERT INTO things VALUES ('<b>&</b>', 1, 'ada@example.com', 123456789012345678901234567890.0123456789, 0.1,
				'NaN', '2026-01-02 03:04:05.5+00', '2026-01-02', '\x00ff10', '{"b": [1, 2], "a": "x"}', true,
				'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 9007199254740993, NULL)`,
			want: `{"zeta":"<b>&</b>","id":1,"email":"ada@example.com","amount":123456789012345678901234567890.0123456789,"ratio":0.1,` +
				`"nan":"NaN","at":"2026-01-02T03:04:05.5Z","day":"2026-01-02","raw":"AP8Q","doc":{"a":"x","b":[1,2]},"ok":true,` +
				`"uid":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","big":9007199254740993,"none":null}`,
		},
		{
			kind: "mysql",
			create: `CREATE TABLE things (zeta text, id int PRIMARY KEY, email text, amount decimal(40,10), ratio double,
				at datetime(6), day date, raw varbinary(10), doc json, ok boolean, big bigint unsigned, none text)`,
			insert: `INSERT INTO things VALUES ('<b>&</b>', 1, 'ada@example.com', 123456789012345678901234567890.0123456789, 0.1,
				'2026-01-02 03:04:05.5', '2026-01-02', x'00ff10', '{"b": [1, 2], "a": "x"}', true, 18446744073709551615, NULL)`,
			want: `{"zeta":"<b>&</b>","id":1,"email":"ada@example.com","amount":123456789012345678901234567890.0123456789,"ratio":0.1,` +
				`"at":"2026-01-02T03:04:05.5Z","day":"2026-01-02","raw":"AP8Q","doc":DOC,"ok":1,` +
				`"big":18446744073709551615,"none":null}`,
		},
	}
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		for _, tt := range tests {
			if tt.kind != srv.Kind {
				continue
			}
			db := srv.NewDatabase(t)
			db.Exec(t, tt.create, tt.insert)
			// MariaDB's JSON is LONGTEXT with a check: exported as text.
			doc := `{"a":"x","b":[1,2]}`
			if db.Count(t, "SELECT COUNT(*) FROM (SELECT VERSION() AS v) x WHERE v LIKE '%MariaDB%'") == 1 {
				doc = `"{\"b\": [1, 2], \"a\": \"x\"}"`
			}
			tt.want = strings.Replace(tt.want, "DOC", doc, 1)
			c := mustConnector(t, typ, db, `
connectors:
  - name: crm
    type: ${TYPE}
    dsn: ${DSN}
    tables:
      - {name: things, match: {email: email}, erase: delete}
`)
			w := &writer{}
			if _, err := c.(connectors.Exporter).Export(t.Context(), subject("email", "ada@example.com"), w); err != nil {
				t.Fatalf("Export: %v", err)
			}
			if len(w.records) != 1 {
				t.Fatalf("exported %d records; want 1", len(w.records))
			}
			// The writer re-encodes with encoding/json, which sorts a
			// RawMessage's keys no more than it escapes them: compare as
			// the record was written, modulo HTML escaping.
			got := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(w.records[0])
			if diff := cmp.Diff(tt.want, compactJSONDoc(t, got)); diff != "" {
				t.Errorf("record (-want +got):\n%s", diff)
			}
		}
	})
}

// compactJSONDoc returns s with a JSON column's object ("doc") re-encoded
// with sorted keys, as the servers store JSON in their own key order.
func compactJSONDoc(t *testing.T, s string) string {
	t.Helper()
	re := regexp.MustCompile(`"doc":(\{[^}]*\})`)
	return re.ReplaceAllStringFunc(s, func(m string) string {
		var v map[string]any
		if err := json.Unmarshal([]byte(re.FindStringSubmatch(m)[1]), &v); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(v)
		return `"doc":` + string(b)
	})
}

// TestMask checks what each strategy writes, that the other person's row is
// untouched, and that a second erasure finds nothing left to mask.
func TestMask(t *testing.T) {
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		c, db := billing(t, typ, srv, maskCustomers)
		seedBilling(t, db)
		s := subject("email", adaEmail, "customer_id", "1001")
		res, err := c.(connectors.Eraser).Erase(t.Context(), s)
		if err != nil {
			t.Fatalf("Erase: %v", err)
		}
		want := map[string]int64{"customers": 1, "invoices": 2, "segment_members": 2}
		if diff := cmp.Diff(want, counts(res)); diff != "" {
			t.Errorf("Erase (-want +got):\n%s", diff)
		}
		var email, phone, ref string
		var name *string
		if err := db.DB.QueryRowContext(t.Context(), "SELECT email, name, phone, ref FROM customers WHERE id = 1001").Scan(&email, &name, &phone, &ref); err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^redacted-[0-9a-f]{16}@invalid$`).MatchString(email) {
			t.Errorf("email = %q; want redacted-<16 hex>@invalid", email)
		}
		if name != nil {
			t.Errorf("name = %q; want NULL", *name)
		}
		if len(phone) != len(adaPhone) || phone == adaPhone || !regexp.MustCompile(`^[a-zA-Z0-9]+$`).MatchString(phone) {
			t.Errorf("phone = %q; want %d random letters and digits", phone, len(adaPhone))
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(ref) {
			t.Errorf("ref = %q; want 64 hex digits", ref)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM customers WHERE id = 2002 AND email = 'grace@example.com' AND ref = 'ref-grace'"); n != 1 {
			t.Error("Grace's row changed")
		}
		res, err = c.(connectors.Eraser).Erase(t.Context(), s)
		if err != nil || res.Records != 0 {
			t.Errorf("second Erase: %d records, %v; want 0", res.Records, err)
		}
	})
}

// TestMaskIdempotentByKind checks that a row still matched after it was
// masked (matched by a column the mask leaves) is not masked again: hmac is
// not hashed twice, a fixed value not set twice; and records what happens
// with random alone, which cannot be told from a value: masked again, and
// counted, by every erasure.
func TestMaskIdempotentByKind(t *testing.T) {
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		for _, tt := range []struct {
			mask     string
			second   int64
			sameOnce bool // the second erasure leaves the value as the first wrote it
		}{
			{mask: "{ref: hmac}", second: 0, sameOnce: true},
			{mask: "{ref: {fixed: gone}}", second: 0, sameOnce: true},
			{mask: "{ref: email_format}", second: 0, sameOnce: true},
			{mask: "{ref: null}", second: 0, sameOnce: true},
			{mask: "{ref: random}", second: 1, sameOnce: false},
			{mask: "{ref: random, name: null}", second: 0, sameOnce: true},
		} {
			t.Run(tt.mask, func(t *testing.T) {
				t.Parallel()
				db := srv.NewDatabase(t)
				db.Exec(t, schema(srv.Kind)...)
				seedBilling(t, db)
				c := mustConnector(t, typ, db, `
connectors:
  - name: billing
    type: ${TYPE}
    dsn: ${DSN}
    tables:
      - name: customers
        match: {id: customer_id}
        erase: mask
        mask: `+tt.mask+`
`)
				s := subject("customer_id", "1001")
				read := func() string {
					var ref *string
					if err := db.DB.QueryRowContext(t.Context(), "SELECT ref FROM customers WHERE id = 1001").Scan(&ref); err != nil {
						t.Fatal(err)
					}
					if ref == nil {
						return "<null>"
					}
					return *ref
				}
				res, err := c.(connectors.Eraser).Erase(t.Context(), s)
				if err != nil || res.Records != 1 {
					t.Fatalf("first Erase: %d records, %v; want 1", res.Records, err)
				}
				first := read()
				if first == "ref-ada" {
					t.Fatal("first Erase left ref as it was")
				}
				res, err = c.(connectors.Eraser).Erase(t.Context(), s)
				if err != nil || res.Records != tt.second {
					t.Errorf("second Erase: %d records, %v; want %d", res.Records, err, tt.second)
				}
				if again := read(); (again == first) != tt.sameOnce {
					t.Errorf("ref after the first erasure %q, after the second %q", first, again)
				}
			})
		}
	})
}

// TestRetain checks that a table kept on a legal basis is kept whole (erase:
// delete) and reported with its basis.
func TestRetain(t *testing.T) {
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		db := srv.NewDatabase(t)
		db.Exec(t, schema(srv.Kind)...)
		seedBilling(t, db)
		c := mustConnector(t, typ, db, `
connectors:
  - name: billing
    type: ${TYPE}
    dsn: ${DSN}
    tables:
      - name: invoices
        match: {customer_id: customer_id}
        erase: delete
        retain: "tax law: invoices kept 10 years"
`)
		res, err := c.(connectors.Eraser).Erase(t.Context(), subject("customer_id", "1001"))
		if err != nil {
			t.Fatal(err)
		}
		want := []connectors.CollectionResult{{Name: "invoices", Outcome: "retained", Records: 2, Basis: "tax law: invoices kept 10 years",
			MatchKinds: []string{"customer_id"}, KindsKnown: []string{"customer_id"}}}
		if diff := cmp.Diff(want, res.Collections); diff != "" {
			t.Errorf("Erase (-want +got):\n%s", diff)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM invoices WHERE customer_id = 1001"); n != 2 {
			t.Errorf("%d invoices left; want 2", n)
		}
	})
}

// TestHandles checks that a connector with no opt_out does no opt-outs.
func TestHandles(t *testing.T) {
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		db := srv.NewDatabase(t)
		db.Exec(t, schema(srv.Kind)...)
		c := mustConnector(t, typ, db, `
connectors:
  - name: billing
    type: ${TYPE}
    dsn: ${DSN}
    tables:
      - {name: invoices, match: {customer_id: customer_id}, erase: delete}
`)
		for a, want := range map[connectors.Action]bool{connectors.ActionExport: true, connectors.ActionErase: true, connectors.ActionOptOut: false} {
			if got := connectors.Supports(c, a); got != want {
				t.Errorf("Supports(%s) = %v; want %v", a, got, want)
			}
		}
	})
}

// TestOneTransaction checks that an erasure is one transaction: when a
// later table fails (a table the file does not name still references the
// subject's customer), what the earlier tables deleted is rolled back, and
// the error is permanent and names the table.
func TestOneTransaction(t *testing.T) {
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		db := srv.NewDatabase(t)
		db.Exec(t, schema(srv.Kind)...)
		seedBilling(t, db)
		db.Exec(t, `CREATE TABLE notes (id int PRIMARY KEY, customer_id int, FOREIGN KEY (customer_id) REFERENCES customers (id))`,
			`INSERT INTO notes VALUES (1, 1001)`)
		c := mustConnector(t, typ, db, `
connectors:
  - name: billing
    type: ${TYPE}
    dsn: ${DSN}
    tables:
      - {name: customers, match: {id: customer_id}, erase: delete}
      - {name: invoices, match: {customer_id: customer_id}, erase: delete}
      - {name: segment_members, match: {customer_id: customer_id}, erase: delete}
`)
		_, err := c.(connectors.Eraser).Erase(t.Context(), subject("customer_id", "1001"))
		if err == nil || !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "erase customers") {
			t.Errorf("Erase: %v; want a permanent error naming customers", err)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM invoices WHERE customer_id = 1001"); n != 2 {
			t.Errorf("%d of Ada's invoices left; want 2 (the transaction rolled back)", n)
		}
	})
}

// TestEraseOrder checks that tables listed parents first are erased
// children first, the result listing them in that order.
func TestEraseOrder(t *testing.T) {
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		db := srv.NewDatabase(t)
		db.Exec(t, schema(srv.Kind)...)
		db.Exec(t, `CREATE TABLE invoice_lines (id int PRIMARY KEY, invoice_id int, customer_id int, FOREIGN KEY (invoice_id) REFERENCES invoices (id))`)
		seedBilling(t, db)
		db.Exec(t, `INSERT INTO invoice_lines VALUES (1, 1, 1001), (2, 3, 1001), (3, 2, 2002)`)
		c := mustConnector(t, typ, db, `
connectors:
  - name: billing
    type: ${TYPE}
    dsn: ${DSN}
    tables:
      - {name: customers, match: {id: customer_id}, erase: delete}
      - {name: invoices, match: {customer_id: customer_id}, erase: delete}
      - {name: invoice_lines, match: {customer_id: customer_id}, erase: delete}
      - {name: segment_members, match: {customer_id: customer_id}, erase: delete}
`)
		res, err := c.(connectors.Eraser).Erase(t.Context(), subject("customer_id", "1001"))
		if err != nil {
			t.Fatalf("Erase: %v", err)
		}
		var order []string
		for _, col := range res.Collections {
			order = append(order, fmt.Sprintf("%s:%d", col.Name, col.Records))
		}
		if diff := cmp.Diff([]string{"invoice_lines:2", "invoices:2", "segment_members:2", "customers:1"}, order); diff != "" {
			t.Errorf("Erase order (-want +got):\n%s", diff)
		}
	})
}

// counts returns the records per table of res, without zeros.
func counts(res connectors.Result) map[string]int64 {
	out := map[string]int64{}
	for _, c := range res.Collections {
		if c.Records != 0 {
			out[c.Name] = c.Records
		}
	}
	return out
}
