package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// demoDatabase holds the demo shop: in the service's MongoDB, or on the
// embedded store in an embedded FerretDB of its own (see app.seedDemo).
const demoDatabase = "demo_shop"

// demoConnectors is the connectors file written for --demo.
const demoConnectors = `# Connectors of the demo shop seeded by 'dsar dev --demo'. See docs/connectors.md.
connectors:
  - name: shop
    type: mongodb
    database: demo_shop        # no uri: the demo shop's server, which dsar dev --demo starts
    data_map:                  # what the shop does with personal data: in each access package, and in 'dsar datamap'
      purpose: Selling and delivering orders, customer support, and newsletters to those who opted in
      categories: [contact details, postal address, order history, support tickets, newsletter subscriptions]
      recipients: [parcel carrier, payment processor, email service provider]
      retention: 6 years after the last order (tax records); support tickets 2 years; newsletters until the person opts out
      source: the person, at sign-up, checkout and when writing to support
      legal_basis: contract
    collections:
      - name: customers
        match: {email: email, phone: phone}
        provide: {customer_id: _id, email: email}   # from an email or a phone: orders by customer id, tickets and segments by email
        erase: mask                   # keep the row for accounting, null what identifies
        mask: [email, name, phone, address]
        opt_out: {set: {marketing_opt_in: false}}
      - name: orders
        match: {customer_id: customer_id}
        erase: mask
        mask: [shipping_address]
      - name: tickets
        match: {email: email}
        erase: delete
      - name: segments
        match: {members: email}       # a segment's member list
        erase: {pull: members}
        opt_out: {pull: members}
`

// seedDemo resets the demo shop to its initial content: a handful of
// obviously fake people with customers, orders, tickets and segments.
func seedDemo(ctx context.Context, client *mongo.Client) error {
	return seedDemoInto(ctx, client.Database(demoDatabase))
}

// seedDemoInto is seedDemo into db.
func seedDemoInto(ctx context.Context, db *mongo.Database) error {
	data := map[string][]bson.D{
		"customers": {
			{{Key: "_id", Value: "cus_ada"}, {Key: "email", Value: "ada@example.com"}, {Key: "name", Value: "Ada Lovelace"}, {Key: "phone", Value: "+442079460001"}, {Key: "address", Value: "1 Example Row, London"}, {Key: "marketing_opt_in", Value: true}},
			{{Key: "_id", Value: "cus_grace"}, {Key: "email", Value: "grace@example.com"}, {Key: "name", Value: "Grace Hopper"}, {Key: "phone", Value: "+12025550102"}, {Key: "address", Value: "2 Sample Street, Arlington"}, {Key: "marketing_opt_in", Value: true}},
			{{Key: "_id", Value: "cus_alan"}, {Key: "email", Value: "alan@example.com"}, {Key: "name", Value: "Alan Turing"}, {Key: "phone", Value: "+441619460003"}, {Key: "address", Value: "3 Test Lane, Manchester"}, {Key: "marketing_opt_in", Value: true}},
		},
		"orders": {
			{{Key: "_id", Value: "ord_1001"}, {Key: "customer_id", Value: "cus_ada"}, {Key: "items", Value: bson.A{"analytical engine manual"}}, {Key: "total", Value: 42.5}, {Key: "shipping_address", Value: "1 Example Row, London"}},
			{{Key: "_id", Value: "ord_1002"}, {Key: "customer_id", Value: "cus_ada"}, {Key: "items", Value: bson.A{"punched cards x100"}}, {Key: "total", Value: 12.0}, {Key: "shipping_address", Value: "1 Example Row, London"}},
			{{Key: "_id", Value: "ord_1003"}, {Key: "customer_id", Value: "cus_grace"}, {Key: "items", Value: bson.A{"compiler handbook"}}, {Key: "total", Value: 30.0}, {Key: "shipping_address", Value: "2 Sample Street, Arlington"}},
		},
		"tickets": {
			{{Key: "_id", Value: "tkt_1"}, {Key: "email", Value: "ada@example.com"}, {Key: "subject", Value: "Where is my order?"}},
			{{Key: "_id", Value: "tkt_2"}, {Key: "email", Value: "grace@example.com"}, {Key: "subject", Value: "Found a bug"}},
		},
		"segments": {
			{{Key: "_id", Value: "seg_newsletter"}, {Key: "name", Value: "Newsletter"}, {Key: "members", Value: bson.A{"ada@example.com", "grace@example.com", "alan@example.com"}}},
			{{Key: "_id", Value: "seg_vip"}, {Key: "name", Value: "VIP customers"}, {Key: "members", Value: bson.A{"ada@example.com", "alan@example.com"}}},
		},
	}
	for coll, docs := range data {
		for _, d := range docs {
			_, err := db.Collection(coll).ReplaceOne(ctx, bson.D{{Key: "_id", Value: d[0].Value}}, d, options.Replace().SetUpsert(true))
			if err != nil {
				return fmt.Errorf("seed demo %s: %w", coll, err)
			}
		}
	}
	return nil
}

// writeDemoConnectors writes the demo connectors file into dataDir.
func writeDemoConnectors(dataDir string) (string, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	path := filepath.Join(dataDir, "demo-connectors.yaml")
	if err := os.WriteFile(path, []byte(demoConnectors), 0o600); err != nil {
		return "", fmt.Errorf("demo connectors file: %w", err)
	}
	return path, nil
}

// printDev prints what a newcomer needs after `dsar dev`: the API key when it
// was generated (once; it is not logged), and with --demo commands to paste.
// Every command works pasted as printed into a POSIX shell, one by one or
// all at once: the id of each request filed is kept in a shell variable
// (read from the answer with sed, no jq needed), and what has to wait for
// the workers (an approval, the export) retries each second until it can
// be done. approve says whether deletions wait for an agent's approval.
func printDev(w io.Writer, base, key string, generated, demo, approve bool) {
	if generated {
		fmt.Fprintf(w, "\nAdmin API key for this run (generated; set DSAR_DEV_API_KEY to choose one):\n  %s\n", key)
	}
	signIn := "the admin API key above"
	if !generated {
		signIn = "DSAR_DEV_API_KEY"
	}
	fmt.Fprintf(w, "\nPrivacy portal: %s/privacy\nAgent console:  %s/console (sign in with %s)\n", base, base, signIn)
	if !demo {
		return
	}
	bearer := shellQuote("Authorization: Bearer " + key)
	file := func(variable, body string) string {
		return fmt.Sprintf(`%s=$(curl -s -X POST %s/v1/requests -H %s -H "Content-Type: application/json" -d '%s' | sed -n 's/^{"id":"\([^"]*\)".*/\1/p'); echo "%s=$%s"`,
			variable, base, bearer, body, variable, variable)
	}
	fmt.Fprintf(w, "\nTry the demo shop: paste these into a shell (each request's id is kept in a variable):\n\n")
	fmt.Fprintf(w, "  # access: everything the shop holds on Ada\n  %s\n\n", file("ACCESS", `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`))
	if approve {
		fmt.Fprintf(w, "  # deletion: erase Grace (orders are kept but masked); deletions wait for an agent's approval, given here\n  # as soon as the request awaits it:\n")
	} else {
		fmt.Fprintf(w, "  # deletion: erase Grace (orders are kept but masked)\n")
	}
	fmt.Fprintf(w, "  %s\n", file("DELETION", `{"type":"deletion","regulation":"gdpr","subject":{"email":"grace@example.com"}}`))
	if approve {
		fmt.Fprintf(w, "  until curl -sf -X POST %s/v1/requests/$DELETION/approve -H %s; do sleep 1; done; echo\n", base, bearer)
	}
	fmt.Fprintf(w, "\n  # opt-out: take Alan out of every segment (CCPA)\n  %s\n\n", file("OPTOUT", `{"type":"opt_out","regulation":"ccpa","subject":{"email":"alan@example.com"}}`))
	fmt.Fprintf(w, "  # then: follow a request (status, jobs, records), and save Ada's data once her request is done\n")
	fmt.Fprintf(w, "  curl -s %s/v1/requests/$ACCESS -H %s; echo\n", base, bearer)
	fmt.Fprintf(w, "  until curl -sf -o export.zip %s/v1/requests/$ACCESS/export -H %s; do sleep 1; done; echo \"saved export.zip\"\n\n", base, bearer)
}

// shellQuote quotes s for a POSIX shell: in single quotes, each single
// quote in s closing the quotes, escaped, then reopening them.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
