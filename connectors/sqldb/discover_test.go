package sqldb_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/connectortest"
	"github.com/dsar-project/dsar/connectors/sqldb"
	"github.com/dsar-project/dsar/internal/testenv/sqlenv"
)

// TestDiscover checks, on each server, that Discover finds an uncovered
// email column of a configured table (Covered) and of a table the file does
// not name, skips the columns the file covers, reads at most the sample from
// each table, reports progress, and returns no value.
func TestDiscover(t *testing.T) {
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		c, db := billing(t, typ, srv, maskCustomers)
		seedBilling(t, db)
		db.Exec(t,
			"ALTER TABLE customers ADD COLUMN backup_email varchar(255)",
			"UPDATE customers SET backup_email = 'backup-1@example.org' WHERE id = 1001",
			"UPDATE customers SET backup_email = 'backup-2@example.org' WHERE id = 2002",
			"CREATE TABLE leads (id int PRIMARY KEY, contact_email varchar(255), note varchar(100))",
			`INSERT INTO leads (id, contact_email, note) VALUES
				(1, 'lead1@example.net', 'met at a fair'), (2, 'lead2@example.net', 'called'),
				(3, 'lead3@example.net', NULL), (4, 'lead4@example.net', 'x'), (5, 'lead5@example.net', 'y')`)
		var progress [][2]int
		var got []connectors.Finding
		scanned, err := c.(connectors.Discoverer).Discover(t.Context(),
			connectors.DiscoverOptions{Sample: 3, Progress: func(done, total int) { progress = append(progress, [2]int{done, total}) }},
			func(f connectors.Finding) { got = append(got, f) })
		if err != nil {
			t.Fatalf("Discover: %v", err)
		}
		want := []connectors.Finding{
			{Collection: "customers", Field: "backup_email", Kind: "email", Matches: 2, Sampled: 2, Covered: true},
			{Collection: "leads", Field: "contact_email", Kind: "email", Matches: 3, Sampled: 3},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("findings (-want +got):\n%s", diff)
		}
		// customers 2, invoices 3 of 3, leads 3 of 5, segment_members 3 of 4.
		if want := (connectors.Scanned{Collections: 4, Documents: 2 + 3 + 3 + 3}); scanned != want {
			t.Errorf("scanned %+v, want %+v", scanned, want)
		}
		if diff := cmp.Diff([][2]int{{0, 4}, {1, 4}, {2, 4}, {3, 4}, {4, 4}}, progress); diff != "" {
			t.Errorf("progress (-want +got):\n%s", diff)
		}
		text := fmt.Sprintf("%+v", got)
		for _, v := range []string{"@example", adaEmail, adaPhone, "lead1", "backup-", "Ada"} {
			if strings.Contains(text, v) {
				t.Errorf("findings %s hold value %q", text, v)
			}
		}
	})
}

// TestDiscoverUnreachable: Discover reports the failure, no finding and
// nothing read.
func TestDiscoverUnreachable(t *testing.T) {
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		c := faulty(t, typ, srv, maskCustomers, connectortest.Unreachable)
		n := 0
		scanned, err := c.(connectors.Discoverer).Discover(t.Context(), connectors.DiscoverOptions{}, func(connectors.Finding) { n++ })
		if err == nil || n != 0 || scanned != (connectors.Scanned{}) {
			t.Errorf("Discover = %+v, %v with %d findings; want an error, nothing read, no finding", scanned, err, n)
		}
	})
}

var _ connectors.Discoverer = (*sqldb.Connector)(nil)
