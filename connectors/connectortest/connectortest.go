// Package connectortest is the conformance suite every connector must pass:
// it seeds a subject's data next to another person's, then exports, erases,
// opts out and resolves, checking what each action reports, what it changes,
// and that the other person's data is never disclosed or touched.
//
// A connector package runs it from a test with a [Harness] that knows how to
// seed and inspect the system behind the connector:
//
//	func TestConformance(t *testing.T) {
//		connectortest.Run(t, connectortest.Harness{New: newFixture})
//	}
package connectortest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
)

// Harness lets the suite seed and inspect the system behind a connector.
type Harness struct {
	// New builds a fresh connector against an empty, isolated target and
	// returns it with the Fixture that seeds and inspects that target. The
	// suite calls it once per subtest, possibly in parallel; anything New
	// opens must be released through t.Cleanup.
	New func(t *testing.T) (connectors.Connector, *Fixture)
}

// Fixture seeds and inspects the target of one connector built by
// [Harness.New]. Its functions run on the goroutine of the test given to New
// and may fail that test instead of returning an error.
//
// The fixture knows two people: the subject, whom the suite acts for, and
// another person whose data no action may touch or disclose. They must share
// at least one array or segment when the target has such a thing.
type Fixture struct {
	// Subject is the subject as a request names them at intake.
	Subject connectors.Subject
	// Resolved lists the identities Resolve must find from Subject, and
	// nothing else (Source is not compared). The suite adds them to Subject
	// for every other action, as the service does after resolution.
	Resolved []connectors.Identity
	// OtherValues are identifiers and personal values of the other person;
	// none may appear in anything exported for the subject.
	OtherValues []string

	// Seed writes the subject's and the other person's data.
	Seed func(ctx context.Context)
	// SubjectRecords counts the records that still hold the subject's
	// personal data (records masked or pulled no longer count).
	SubjectRecords func(ctx context.Context) int
	// OtherRecords counts the other person's records that are still exactly
	// as seeded, their memberships of shared segments included.
	OtherRecords func(ctx context.Context) int
	// InSegment reports whether the subject is still in any segment or list.
	// Nil when the target has none.
	InSegment func(ctx context.Context) bool
	// OptedOut reports whether the subject's opt-out flag is set. Nil when
	// the target has none.
	OptedOut func(ctx context.Context) bool

	// Export, Erase and OptOut give, per collection, the records each action
	// must report on freshly seeded data. Collections reported with 0
	// records are ignored.
	Export, Erase, OptOut map[string]int64
}

// Run runs the conformance suite against the connectors h builds. Actions a
// connector does not support (see [connectors.Supports]) are skipped.
func Run(t *testing.T, h Harness) {
	t.Helper()
	t.Run("Export", func(t *testing.T) {
		t.Parallel()
		testExport(t, h)
	})
	t.Run("Erase", func(t *testing.T) {
		t.Parallel()
		testErase(t, h)
	})
	t.Run("OptOut", func(t *testing.T) {
		t.Parallel()
		testOptOut(t, h)
	})
	t.Run("Resolve", func(t *testing.T) {
		t.Parallel()
		testResolve(t, h)
	})
	t.Run("Stranger", func(t *testing.T) {
		t.Parallel()
		testStranger(t, h)
	})
}

// setup builds a connector, seeds its target and checks the seeded state the
// other tests start from.
func setup(t *testing.T, h Harness) (connectors.Connector, *Fixture, connectors.Subject, int) {
	t.Helper()
	c, f := h.New(t)
	if c == nil || f == nil {
		t.Fatal("Harness.New returned a nil connector or fixture")
	}
	ctx := t.Context()
	f.Seed(ctx)
	if n := f.SubjectRecords(ctx); n == 0 {
		t.Fatal("after Seed, SubjectRecords = 0; want the subject's records")
	}
	other := f.OtherRecords(ctx)
	if other == 0 {
		t.Fatal("after Seed, OtherRecords = 0; want the other person's records")
	}
	if f.InSegment != nil && !f.InSegment(ctx) {
		t.Fatal("after Seed, InSegment = false; want the subject in a segment")
	}
	if f.OptedOut != nil && f.OptedOut(ctx) {
		t.Fatal("after Seed, OptedOut = true; want the subject not opted out")
	}
	full := connectors.Subject{Identities: append(append([]connectors.Identity(nil), f.Subject.Identities...), f.Resolved...)}
	return c, f, full, other
}

// skipUnless skips the test when c cannot perform a.
func skipUnless(t *testing.T, c connectors.Connector, a connectors.Action) {
	t.Helper()
	if !connectors.Supports(c, a) {
		t.Skipf("connector %s does not support %s", c.Name(), a)
	}
}

func testExport(t *testing.T, h Harness) {
	c, f, s, other := setup(t, h)
	skipUnless(t, c, connectors.ActionExport)
	ctx := t.Context()
	before := f.SubjectRecords(ctx)

	w := &recorder{}
	res, err := c.(connectors.Exporter).Export(ctx, s, w)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	checkResult(t, "Export", res, f.Export)
	if diff := cmp.Diff(counts(res), w.perCollection()); diff != "" {
		t.Errorf("Export: records reported differ from records written (-reported +written):\n%s", diff)
	}

	subjectValues := values(s)
	for i, r := range w.records {
		for _, v := range f.OtherValues {
			if strings.Contains(r.json, v) {
				t.Errorf("exported record %d (%s) discloses the other person's %q:\n%s", i, r.collection, v, r.json)
			}
		}
		if !containsAny(r.json, subjectValues) {
			t.Errorf("exported record %d (%s) names none of the subject's identities:\n%s", i, r.collection, r.json)
		}
	}

	if got := f.SubjectRecords(ctx); got != before {
		t.Errorf("after Export, SubjectRecords = %d; want %d (export must change nothing)", got, before)
	}
	if got := f.OtherRecords(ctx); got != other {
		t.Errorf("after Export, OtherRecords = %d; want %d (export must change nothing)", got, other)
	}
}

func testErase(t *testing.T, h Harness) {
	c, f, s, other := setup(t, h)
	skipUnless(t, c, connectors.ActionErase)
	ctx := t.Context()
	e := c.(connectors.Eraser)

	res, err := e.Erase(ctx, s)
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	checkResult(t, "Erase", res, f.Erase)
	if res.Records == 0 {
		t.Error("Erase reported 0 records on seeded data")
	}
	if got := f.SubjectRecords(ctx); got != 0 {
		t.Errorf("after Erase, SubjectRecords = %d; want 0", got)
	}
	if f.InSegment != nil && f.InSegment(ctx) {
		t.Error("after Erase, the subject is still in a segment")
	}
	if got := f.OtherRecords(ctx); got != other {
		t.Errorf("after Erase, OtherRecords = %d; want %d (the other person's data must be intact)", got, other)
	}

	again, err := e.Erase(ctx, s)
	if err != nil {
		t.Fatalf("second Erase: %v", err)
	}
	checkResult(t, "second Erase", again, nil)
	if got := f.OtherRecords(ctx); got != other {
		t.Errorf("after second Erase, OtherRecords = %d; want %d", got, other)
	}

	if connectors.Supports(c, connectors.ActionExport) {
		w := &recorder{}
		if _, err := c.(connectors.Exporter).Export(ctx, s, w); err != nil {
			t.Fatalf("Export after Erase: %v", err)
		}
		for i, r := range w.records {
			for _, v := range values(s) {
				if strings.Contains(r.json, v) && !isResolved(f, v) {
					t.Errorf("after Erase, exported record %d (%s) still holds the subject's %q:\n%s", i, r.collection, v, r.json)
				}
			}
		}
	}
}

func testOptOut(t *testing.T, h Harness) {
	c, f, s, other := setup(t, h)
	skipUnless(t, c, connectors.ActionOptOut)
	ctx := t.Context()
	o := c.(connectors.OptOuter)

	res, err := o.OptOut(ctx, s)
	if err != nil {
		t.Fatalf("OptOut: %v", err)
	}
	checkResult(t, "OptOut", res, f.OptOut)
	if res.Records == 0 {
		t.Error("OptOut reported 0 records on seeded data")
	}
	if f.InSegment != nil && f.InSegment(ctx) {
		t.Error("after OptOut, the subject is still in a segment")
	}
	if f.OptedOut != nil && !f.OptedOut(ctx) {
		t.Error("after OptOut, the subject's opt-out flag is not set")
	}
	if got := f.OtherRecords(ctx); got != other {
		t.Errorf("after OptOut, OtherRecords = %d; want %d (the other person's data must be intact)", got, other)
	}

	again, err := o.OptOut(ctx, s)
	if err != nil {
		t.Fatalf("second OptOut: %v", err)
	}
	checkResult(t, "second OptOut", again, nil)
	if f.OptedOut != nil && !f.OptedOut(ctx) {
		t.Error("after second OptOut, the subject's opt-out flag is not set")
	}
}

func testResolve(t *testing.T, h Harness) {
	c, f, _, other := setup(t, h)
	r, ok := c.(connectors.Resolver)
	if !ok {
		t.Skipf("connector %s does not resolve identities", c.Name())
	}
	ctx := t.Context()
	got, err := r.Resolve(ctx, f.Subject)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	for _, id := range got {
		if !strings.HasPrefix(id.Source, c.Name()+"/") {
			t.Errorf("Resolve: identity %s has Source %q; want %q", id.Kind, id.Source, c.Name()+"/COLLECTION")
		}
	}
	if diff := cmp.Diff(identitySet(f.Resolved), identitySet(got)); diff != "" {
		t.Errorf("Resolve (-want +got):\n%s", diff)
	}
	if got := f.OtherRecords(ctx); got != other {
		t.Errorf("after Resolve, OtherRecords = %d; want %d", got, other)
	}
}

// testStranger acts for someone the target has never heard of: every action
// reports 0 records and changes nothing.
func testStranger(t *testing.T, h Harness) {
	c, f, _, other := setup(t, h)
	ctx := t.Context()
	stranger := connectors.Subject{Identities: []connectors.Identity{
		{Kind: "email", Value: "nobody@example.com"},
		{Kind: "customer_id", Value: "0"},
	}}
	subject := f.SubjectRecords(ctx)

	if r, ok := c.(connectors.Resolver); ok {
		ids, err := r.Resolve(ctx, stranger)
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		if len(ids) != 0 {
			t.Errorf("Resolve for a stranger = %v; want none", ids)
		}
	}
	if connectors.Supports(c, connectors.ActionExport) {
		w := &recorder{}
		res, err := c.(connectors.Exporter).Export(ctx, stranger, w)
		if err != nil {
			t.Fatalf("Export: %v", err)
		}
		checkResult(t, "Export for a stranger", res, nil)
		if len(w.records) != 0 {
			t.Errorf("Export for a stranger wrote %d records; want 0", len(w.records))
		}
	}
	if connectors.Supports(c, connectors.ActionErase) {
		res, err := c.(connectors.Eraser).Erase(ctx, stranger)
		if err != nil {
			t.Fatalf("Erase: %v", err)
		}
		checkResult(t, "Erase for a stranger", res, nil)
	}
	if connectors.Supports(c, connectors.ActionOptOut) {
		res, err := c.(connectors.OptOuter).OptOut(ctx, stranger)
		if err != nil {
			t.Fatalf("OptOut: %v", err)
		}
		checkResult(t, "OptOut for a stranger", res, nil)
	}
	if got := f.SubjectRecords(ctx); got != subject {
		t.Errorf("SubjectRecords = %d; want %d (acting for a stranger must change nothing)", got, subject)
	}
	if got := f.OtherRecords(ctx); got != other {
		t.Errorf("OtherRecords = %d; want %d (acting for a stranger must change nothing)", got, other)
	}
}

// checkResult checks that res is consistent (Records is the total over
// Collections) and reports want per collection; nil want means 0 records.
func checkResult(t *testing.T, what string, res connectors.Result, want map[string]int64) {
	t.Helper()
	var sum int64
	for _, c := range res.Collections {
		sum += c.Records
		if c.Records < 0 {
			t.Errorf("%s: collection %s reports %d records", what, c.Name, c.Records)
		}
	}
	if sum != res.Records {
		t.Errorf("%s: Records = %d, but its collections add up to %d", what, res.Records, sum)
	}
	if want == nil {
		want = map[string]int64{}
	}
	if diff := cmp.Diff(nonZero(want), counts(res)); diff != "" {
		t.Errorf("%s: records per collection (-want +got):\n%s", what, diff)
	}
}

// counts returns the records per collection of res, without zeros.
func counts(res connectors.Result) map[string]int64 {
	out := map[string]int64{}
	for _, c := range res.Collections {
		if c.Records != 0 {
			out[c.Name] += c.Records
		}
	}
	return out
}

func nonZero(m map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// values returns every identity value of s.
func values(s connectors.Subject) []string {
	out := make([]string, 0, len(s.Identities))
	for _, id := range s.Identities {
		out = append(out, id.Value)
	}
	return out
}

func isResolved(f *Fixture, v string) bool {
	for _, id := range f.Resolved {
		if id.Value == v {
			return true
		}
	}
	return false
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if sub != "" && strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// identitySet returns ids as sorted "kind=value" strings without duplicates.
func identitySet(ids []connectors.Identity) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, id := range ids {
		k := id.Kind + "=" + id.Value
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// recorder is a RecordWriter that keeps each record as JSON, encoded at once
// as the export does, since the connector may reuse doc.
type recorder struct {
	records []record
}

type record struct {
	collection string
	json       string
}

func (r *recorder) WriteRecord(_ context.Context, collection string, doc any) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("record is not JSON-encodable: %w", err)
	}
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("record is not a JSON object: %.40s", b)
	}
	r.records = append(r.records, record{collection: collection, json: string(b)})
	return nil
}

func (r *recorder) perCollection() map[string]int64 {
	out := map[string]int64{}
	for _, rec := range r.records {
		out[rec.collection]++
	}
	return out
}
