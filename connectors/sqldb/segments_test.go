package sqldb_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/internal/testenv/sqlenv"
)

// eachMember lists a connector's segment members as "table kind=value,...",
// calling also for each.
func eachMember(t *testing.T, c connectors.Connector, also func(connectors.Subject)) []string {
	t.Helper()
	var out []string
	err := c.(connectors.SegmentLister).EachSegmentMember(t.Context(), func(segment string, m connectors.Subject) error {
		var ids []string
		for _, id := range m.Identities {
			ids = append(ids, id.Kind+"="+id.Value)
		}
		out = append(out, segment+" "+strings.Join(ids, ","))
		if also != nil {
			also(m)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("EachSegmentMember: %v", err)
	}
	return out
}

// TestEachSegmentMember lists the billing tables that opt out (customers
// by a flag, segment_members by deleting rows; invoices do not opt out),
// in file then key order, opting Ada out the first time she is listed:
// the listing goes on, and the next one lists her nowhere.
func TestEachSegmentMember(t *testing.T) {
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		c, db := billing(t, typ, srv, "erase: delete")
		seedBilling(t, db)
		optedOut := false
		got := eachMember(t, c, func(m connectors.Subject) {
			if !optedOut && slices.Contains(m.Values("email"), adaEmail) {
				optedOut = true
				ada := connectors.Subject{Identities: append(m.Identities, connectors.Identity{Kind: "customer_id", Value: "1001"})}
				if _, err := c.(connectors.OptOuter).OptOut(t.Context(), ada); err != nil {
					t.Errorf("OptOut while listing: %v", err)
				}
			}
		})
		want := []string{
			"customers email=" + adaEmail + ",phone=" + adaPhone,
			"customers email=" + graceEmail + ",phone=" + gracePhone,
			"segment_members customer_id=2002", // beta
			"segment_members customer_id=2002", // newsletter; Ada's rows went while customers was listed
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("members (-want +got):\n%s", diff)
		}
		want = []string{"customers email=" + graceEmail + ",phone=" + gracePhone, "segment_members customer_id=2002", "segment_members customer_id=2002"}
		if diff := cmp.Diff(want, eachMember(t, c, nil)); diff != "" {
			t.Errorf("members after Ada's opt-out (-want +got):\n%s", diff)
		}
	})
}

// TestEachSegmentMemberBatches lists a table of more rows than a batch
// (read by key, batch after batch) and one without a primary key (read in
// one statement); NULL match columns are left out, and a row with none is
// not listed. An error from fn ends the listing and comes back.
func TestEachSegmentMemberBatches(t *testing.T) {
	eachServer(t, func(t *testing.T, typ string, srv sqlenv.Server) {
		db := srv.NewDatabase(t)
		db.Exec(t,
			"CREATE TABLE audience (id int PRIMARY KEY, email varchar(100), cid int)",
			"CREATE TABLE loose (email varchar(100))")
		const n = 1234
		var vals []string
		for i := 1; i <= n; i++ {
			vals = append(vals, fmt.Sprintf("(%d, 'p%d@example.com', %d)", i, i, i))
		}
		db.Exec(t, "INSERT INTO audience (id, email, cid) VALUES "+strings.Join(vals, ", "),
			"INSERT INTO audience (id, email, cid) VALUES (5000, NULL, 77), (5001, NULL, NULL)",
			"INSERT INTO loose (email) VALUES ('l1@example.com'), ('l2@example.com')")
		c := mustConnector(t, typ, db, `
connectors:
  - name: crm
    type: ${TYPE}
    dsn: ${DSN}
    tables:
      - name: audience
        match: {email: email, cid: customer_id}
        erase: delete
        opt_out: delete
      - name: loose
        match: {email: email}
        erase: delete
        opt_out: delete
`)
		got := eachMember(t, c, nil)
		if len(got) != n+3 {
			t.Fatalf("listed %d members, want %d", len(got), n+3)
		}
		seen := map[string]bool{}
		for _, g := range got {
			if seen[g] {
				t.Errorf("listed twice: %s", g)
			}
			seen[g] = true
		}
		for _, w := range []string{"audience customer_id=1,email=p1@example.com", fmt.Sprintf("audience customer_id=%d,email=p%d@example.com", n, n),
			"audience customer_id=77", "loose email=l1@example.com", "loose email=l2@example.com"} {
			if !seen[w] {
				t.Errorf("not listed: %s", w)
			}
		}

		stop := errors.New("stop")
		calls := 0
		err := c.(connectors.SegmentLister).EachSegmentMember(t.Context(), func(string, connectors.Subject) error {
			calls++
			return stop
		})
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("EachSegmentMember with fn failing: %v after %d calls; want stop after 1", err, calls)
		}
	})
}
