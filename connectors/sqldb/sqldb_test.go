package sqldb_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/connectortest"
	"github.com/dsar-project/dsar/connectors/mask"
	"github.com/dsar-project/dsar/connectors/sqldb"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/testenv/sqlenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// servers are the SQL servers every test runs against, by connector type.
var servers = []struct {
	typ    string
	server func(testing.TB) sqlenv.Server
}{
	{sqldb.TypePostgres, sqlenv.Postgres},
	{sqldb.TypeMySQL, sqlenv.MySQL},
}

// eachServer runs test as a parallel subtest per server.
func eachServer(t *testing.T, test func(t *testing.T, typ string, srv sqlenv.Server)) {
	t.Helper()
	for _, s := range servers {
		t.Run(s.typ, func(t *testing.T) {
			t.Parallel()
			test(t, s.typ, s.server(t))
		})
	}
}

// testMasker is the masker of the tests.
func testMasker(t testing.TB) *mask.Masker {
	t.Helper()
	m, err := mask.NewMasker([]byte("0123456789abcdef0123456789abcdef"))
	testenv.Must(t, err)
	return m
}

// types returns the catalog entries of the sql types, with the test masker.
func types(t testing.TB) connectors.Types {
	d := connectors.Deps{Mask: testMasker(t)}
	return connectors.Types{sqldb.TypePostgres: sqldb.PostgresFactory(d), sqldb.TypeMySQL: sqldb.MySQLFactory(d)}
}

// parse builds the connectors of file (with ${TYPE} and ${DSN} and the other
// variables of env expanded) and closes them when the test ends.
func parse(t testing.TB, file string, env map[string]string) (*connectors.Registry, error) {
	t.Helper()
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	reg, err := connectors.Parse(context.Background(), []byte(file), types(t), lookup)
	if reg != nil {
		t.Cleanup(func() { _ = reg.Close() })
	}
	return reg, err
}

// mustConnector builds the one connector of file on db.
func mustConnector(t testing.TB, typ string, db *sqlenv.Database, file string) connectors.Connector {
	t.Helper()
	reg, err := parse(t, file, map[string]string{"TYPE": typ, "DSN": db.DSN})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	names := reg.Names()
	if len(names) != 1 {
		t.Fatalf("want one connector, have %v", names)
	}
	c, _ := reg.Lookup(names[0])
	return c
}

// schema returns the billing schema's statements for the server.
func schema(kind string) []string {
	ts := "timestamptz"
	if kind == "mysql" {
		ts = "datetime(6)"
	}
	return []string{
		`CREATE TABLE customers (id int PRIMARY KEY, email varchar(255) UNIQUE, name varchar(100),
			phone varchar(40), ref varchar(64), marketing boolean NOT NULL DEFAULT true)`,
		`CREATE TABLE invoices (id int PRIMARY KEY, customer_id int NOT NULL, address varchar(200),
			total decimal(10,2), issued_at ` + ts + `, FOREIGN KEY (customer_id) REFERENCES customers (id))`,
		`CREATE TABLE segment_members (segment varchar(40) NOT NULL, customer_id int NOT NULL,
			PRIMARY KEY (segment, customer_id), FOREIGN KEY (customer_id) REFERENCES customers (id))`,
	}
}

// billingFile is the connectors file of the billing schema; CUSTOMERS_ERASE
// stands for how customers are erased.
const billingFile = `
connectors:
  - name: billing
    type: ${TYPE}
    dsn: ${DSN}
    tables:
      - name: customers
        match: {email: email, phone: phone}
        provide: {customer_id: id}
        CUSTOMERS_ERASE
        opt_out: {set: {marketing: false}}
      - name: invoices
        match: {customer_id: customer_id}
        erase: delete
      - name: segment_members
        match: {customer_id: customer_id}
        erase: delete
        opt_out: delete
`

const maskCustomers = "erase: mask\n        mask: {name: null, email: email_format, phone: random, ref: hmac}"

// The people of the billing database. Ada is the subject; Grace shares the
// newsletter segment with her.
const (
	adaEmail   = "ada@example.com"
	adaPhone   = "+1 555 0100"
	graceEmail = "grace@example.com"
	gracePhone = "+1 555 0199"
)

func seedBilling(t testing.TB, db *sqlenv.Database) {
	t.Helper()
	db.Exec(t,
		`INSERT INTO customers (id, email, name, phone, ref, marketing) VALUES
			(1001, 'ada@example.com', 'Ada Lovelace', '+1 555 0100', 'ref-ada', true),
			(2002, 'grace@example.com', 'Grace Hopper', '+1 555 0199', 'ref-grace', true)`,
		`INSERT INTO invoices (id, customer_id, address, total, issued_at) VALUES
			(1, 1001, '12 Engine Row', 10.50, '2026-01-02 03:04:05'),
			(2, 2002, '1 Navy Way', 20.00, '2026-01-03 03:04:05'),
			(3, 1001, '12 Engine Row', 30.25, '2026-01-04 03:04:05')`,
		`INSERT INTO segment_members (segment, customer_id) VALUES
			('newsletter', 1001), ('newsletter', 2002), ('vip', 1001), ('beta', 2002)`,
	)
}

func billingFixture(t *testing.T, db *sqlenv.Database) *connectortest.Fixture {
	return &connectortest.Fixture{
		Subject: connectors.Subject{Identities: []connectors.Identity{
			{Kind: "email", Value: adaEmail},
			{Kind: "phone", Value: adaPhone},
		}},
		Resolved:    []connectors.Identity{{Kind: "customer_id", Value: "1001"}},
		OtherValues: []string{graceEmail, gracePhone, "Grace Hopper", "1 Navy Way", "ref-grace", "beta"},
		Seed:        func(context.Context) { seedBilling(t, db) },
		SubjectRecords: func(context.Context) int {
			return db.Count(t, `SELECT COUNT(*) FROM customers WHERE email = 'ada@example.com' OR phone = '+1 555 0100'
				OR name = 'Ada Lovelace' OR ref = 'ref-ada'`) +
				db.Count(t, `SELECT COUNT(*) FROM invoices WHERE customer_id = 1001 OR address = '12 Engine Row'`) +
				db.Count(t, `SELECT COUNT(*) FROM segment_members WHERE customer_id = 1001`)
		},
		OtherRecords: func(context.Context) int {
			return db.Count(t, `SELECT COUNT(*) FROM customers WHERE id = 2002 AND email = 'grace@example.com'
				AND phone = '+1 555 0199' AND name = 'Grace Hopper' AND ref = 'ref-grace' AND marketing = true`) +
				db.Count(t, `SELECT COUNT(*) FROM invoices WHERE id = 2 AND customer_id = 2002 AND address = '1 Navy Way' AND total = 20`) +
				db.Count(t, `SELECT COUNT(*) FROM segment_members WHERE customer_id = 2002`)
		},
		InSegment: func(context.Context) bool {
			return db.Count(t, `SELECT COUNT(*) FROM segment_members WHERE customer_id = 1001`) > 0
		},
		OptedOut: func(context.Context) bool {
			return db.Count(t, `SELECT COUNT(*) FROM customers WHERE id = 1001 AND marketing = false`) == 1
		},
		Export: map[string]int64{"customers": 1, "invoices": 2, "segment_members": 2},
		Erase:  map[string]int64{"customers": 1, "invoices": 2, "segment_members": 2},
		OptOut: map[string]int64{"customers": 1, "segment_members": 2},
	}
}

// billing makes a database with the billing schema and its connector.
func billing(t testing.TB, typ string, srv sqlenv.Server, customersErase string) (connectors.Connector, *sqlenv.Database) {
	t.Helper()
	db := srv.NewDatabase(t)
	db.Exec(t, schema(srv.Kind)...)
	return mustConnector(t, typ, db, strings.Replace(billingFile, "CUSTOMERS_ERASE", customersErase, 1)), db
}

// TestConformance runs the connector suite on each server, with customers
// masked, and with customers deleted (which only works children first).
func TestConformance(t *testing.T) {
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		for name, customersErase := range map[string]string{
			"customers_masked":  maskCustomers,
			"customers_deleted": "erase: delete",
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				connectortest.Run(t, connectortest.Harness{
					New: func(t *testing.T) (connectors.Connector, *connectortest.Fixture) {
						c, db := billing(t, typ, srv, customersErase)
						return c, billingFixture(t, db)
					},
					Fault: func(t *testing.T, f connectortest.Fault) connectors.Connector {
						return faulty(t, typ, srv, customersErase, f)
					},
				})
			})
		}
	})
}

// faulty builds the billing connector against the live schema, then points
// it at a server that fails with f: a closed port (Unreachable), or the
// right server with credentials it refuses (Rejected). A database has no
// rate limit: RateLimited gives nil.
func faulty(t *testing.T, typ string, srv sqlenv.Server, customersErase string, f connectortest.Fault) connectors.Connector {
	t.Helper()
	var dsn string
	c, db := billing(t, typ, srv, customersErase)
	switch f {
	case connectortest.Unreachable:
		dsn = "postgres://postgres@" + testenv.ClosedAddr(t) + "/x?sslmode=disable&connect_timeout=1"
		if srv.Kind == "mysql" {
			dsn = "root@tcp(" + testenv.ClosedAddr(t) + ")/x?timeout=1s"
		}
	case connectortest.Rejected:
		user := testenv.Name("dsar_role")
		if srv.Kind == "postgres" {
			// Trust authentication accepts any password: a role that may
			// not log in is what a rejected credential looks like here.
			srv.Exec(t, "CREATE ROLE "+user+" NOLOGIN PASSWORD 'right-password'")
			t.Cleanup(func() { srv.Exec(t, "DROP ROLE IF EXISTS "+user) })
		} else {
			srv.Exec(t, "CREATE USER '"+user+"'@'%' IDENTIFIED BY 'right-password'")
			t.Cleanup(func() { srv.Exec(t, "DROP USER IF EXISTS '"+user+"'@'%'") })
		}
		dsn = srv.WithUser(t, db.DSN, user, "wrong-password")
	default:
		return nil
	}
	rc, err := sqldb.Reopen(c.(*sqldb.Connector), dsn)
	testenv.Must(t, err)
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}

// TestLoadRejected checks that a connector whose credentials the server
// refuses at start-up is a permanent error naming the dsn's line, without
// the password.
func TestLoadRejected(t *testing.T) {
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		db := srv.NewDatabase(t)
		db.Exec(t, schema(srv.Kind)...)
		user := testenv.Name("dsar_role")
		if srv.Kind == "postgres" {
			srv.Exec(t, "CREATE ROLE "+user+" NOLOGIN PASSWORD 'right-password'")
			t.Cleanup(func() { srv.Exec(t, "DROP ROLE IF EXISTS "+user) })
		} else {
			srv.Exec(t, "CREATE USER '"+user+"'@'%' IDENTIFIED BY 'right-password'")
			t.Cleanup(func() { srv.Exec(t, "DROP USER IF EXISTS '"+user+"'@'%'") })
		}
		file := strings.Replace(billingFile, "CUSTOMERS_ERASE", "erase: delete", 1)
		_, err := parse(t, file, map[string]string{"TYPE": typ, "DSN": srv.WithUser(t, db.DSN, user, "wrong-password")})
		if err == nil {
			t.Fatal("parse with rejected credentials: no error")
		}
		if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "line 5:") {
			t.Errorf("parse with rejected credentials: %v; want a permanent error at line 5 (the dsn)", err)
		}
		if strings.Contains(err.Error(), "wrong-password") {
			t.Errorf("the error quotes the password: %v", err)
		}
	})
}
