package sqldb_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/connectortest"
	"github.com/dsar-project/dsar/connectors/sqldb"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/testenv/sqlenv"
)

// checks renders a connector's checks as "what: ok", "what: FAIL", or
// "what: unknown".
func checks(t *testing.T, c connectors.Connector) []string {
	t.Helper()
	var out []string
	for _, ch := range c.(connectors.Checker).Check(t.Context()) {
		switch {
		case ch.Unknown():
			out = append(out, ch.What+": unknown")
		case ch.Passed():
			out = append(out, ch.What+": ok")
		default:
			out = append(out, ch.What+": FAIL")
		}
	}
	return out
}

// allChecks are the checks of the billing connector, customers masked.
var allChecks = []string{
	"reachable", "credentials accepted",
	"table customers", "column email in customers", "column id in customers", "column marketing in customers",
	"column name in customers", "column phone in customers", "column ref in customers",
	"table invoices", "column customer_id in invoices",
	"table segment_members", "column customer_id in segment_members",
	"permission to select in customers", "permission to update in customers",
	"permission to select in invoices", "permission to delete in invoices",
	"permission to select in segment_members", "permission to delete in segment_members",
}

// withResults returns allChecks, each "ok" but those in fail, "FAIL".
func withResults(fail ...string) []string {
	var out []string
	for _, c := range allChecks {
		r := ": ok"
		for _, f := range fail {
			if c == f {
				r = ": FAIL"
			}
		}
		out = append(out, c+r)
	}
	return out
}

// TestCheck checks what Check reports for a healthy connector, a table
// dropped after the load, a user without DELETE, rejected credentials and an
// unreachable server.
func TestCheck(t *testing.T) {
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		t.Run("healthy", func(t *testing.T) {
			t.Parallel()
			c, _ := billing(t, typ, srv, maskCustomers)
			if diff := cmp.Diff(withResults(), checks(t, c)); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
		})
		t.Run("table dropped", func(t *testing.T) {
			t.Parallel()
			c, db := billing(t, typ, srv, maskCustomers)
			db.Exec(t, "DROP TABLE segment_members")
			var want []string
			for _, w := range withResults("table segment_members") {
				if w == "table segment_members: FAIL" || !strings.Contains(w, "segment_members") {
					want = append(want, w)
				}
			}
			got := checks(t, c)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
		})
		t.Run("no delete privilege", func(t *testing.T) {
			t.Parallel()
			db := srv.NewDatabase(t)
			db.Exec(t, schema(srv.Kind)...)
			user := testenv.Name("dsar_ro")
			if srv.Kind == "postgres" {
				srv.Exec(t, "CREATE ROLE "+user+" LOGIN PASSWORD 'pw'")
				t.Cleanup(func() {
					db.Exec(t, "DROP OWNED BY "+user)
					srv.Exec(t, "DROP ROLE IF EXISTS "+user)
				})
				db.Exec(t, "GRANT USAGE ON SCHEMA "+db.Name+" TO "+user,
					"GRANT SELECT, UPDATE ON ALL TABLES IN SCHEMA "+db.Name+" TO "+user)
			} else {
				srv.Exec(t, "CREATE USER '"+user+"'@'%' IDENTIFIED BY 'pw'",
					"GRANT SELECT, UPDATE ON "+db.Name+".* TO '"+user+"'@'%'")
				t.Cleanup(func() { srv.Exec(t, "DROP USER IF EXISTS '"+user+"'@'%'") })
			}
			reg, err := parse(t, strings.Replace(billingFile, "CUSTOMERS_ERASE", maskCustomers, 1),
				map[string]string{"TYPE": typ, "DSN": srv.WithUser(t, db.DSN, user, "pw")})
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			c, _ := reg.Lookup("billing")
			want := withResults("permission to delete in invoices", "permission to delete in segment_members")
			if diff := cmp.Diff(want, checks(t, c)); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
		})
		for _, f := range []connectortest.Fault{connectortest.Rejected, connectortest.Unreachable} {
			t.Run(f.String(), func(t *testing.T) {
				t.Parallel()
				c := faulty(t, typ, srv, maskCustomers, f)
				want := []string{"reachable: ok", "credentials accepted: FAIL"}
				if f == connectortest.Unreachable {
					want = []string{"reachable: FAIL"}
				}
				if diff := cmp.Diff(want, checks(t, c)); diff != "" {
					t.Errorf("Check (-want +got):\n%s", diff)
				}
			})
		}
	})
}

var _ connectors.Checker = (*sqldb.Connector)(nil)
