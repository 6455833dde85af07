package hubspot

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/connectors"
)

// orderedRecorder keeps exported records and fails, as the export store
// does (dsr.ErrExportOrder), when a collection is written to again after
// another one.
type orderedRecorder struct {
	recorder
	order []string
}

func (r *orderedRecorder) WriteRecord(ctx context.Context, coll string, doc any) error {
	if n := len(r.order); n == 0 || r.order[n-1] != coll {
		if slices.Contains(r.order, coll) {
			return fmt.Errorf("collection %s written again after %s", coll, r.order[n-1])
		}
		r.order = append(r.order, coll)
	}
	return r.recorder.WriteRecord(ctx, coll, doc)
}

func subject(es ...string) connectors.Subject {
	var s connectors.Subject
	for _, e := range es {
		s.Identities = append(s.Identities, connectors.Identity{Kind: "email", Value: e})
	}
	return s
}

// The secondary-email fixture: Ada's old contact holds her address among
// its additional emails; Ada's own contact has a work address as an
// additional one; Carl's additional email only starts like hers.
const (
	oldID, oldEmail   = "70055555", "ada.old@example.com"
	carlID, carlEmail = "70066666", "carl@example.com"
	adaWork           = "ada.work@example.org"
)

func (f *fake) seedSecondary() {
	f.seed()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.contacts[adaID].props[propAdditionalEmails] = adaWork
	f.contacts[oldID] = &fakeContact{id: oldID, email: oldEmail, created: "2020-01-01T10:00:00.000Z",
		props:  map[string]string{"email": oldEmail, "firstname": "Ada", propAdditionalEmails: "a.l@example.net;ADA@example.com", "hs_object_id": oldID},
		assocs: map[string][]string{"notes": {"8301"}}}
	f.engagements["notes"]["8301"] = map[string]string{"hs_note_body": "old Ada"}
	f.contacts[carlID] = &fakeContact{id: carlID, email: carlEmail, created: "2021-01-01T10:00:00.000Z",
		props: map[string]string{"email": carlEmail, propAdditionalEmails: "ada@example.com.evil.test", "hs_object_id": carlID}}
	f.lists["101"].members[oldID] = "2024-04-01T00:00:00.000Z"
	f.statuses[oldEmail] = []status{{SubscriberIDString: oldEmail, Channel: "EMAIL", SubscriptionID: 1, Status: "SUBSCRIBED"}}
}

// TestSecondaryEmails: a contact is found by its primary or any of its
// additional emails, once, in access, erasure and opt-out; a contact whose
// additional email only looks like the subject's is not.
func TestSecondaryEmails(t *testing.T) {
	t.Parallel()
	f, srv := newFake(t)
	f.seedSecondary()
	f.searchLoose = true // the search answers wider than the address: the connector checks
	c := testConnector(t, srv, fakeToken)

	// Ada by both her addresses: her contact once, the old one by its
	// additional email.
	out := &orderedRecorder{}
	res, err := c.Export(t.Context(), subject(adaEmail, "ADA.WORK@example.org"), out)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range out.recs[collContacts] {
		ids = append(ids, d.(map[string]any)["id"].(string))
	}
	if want := []string{adaID, oldID}; !reflect.DeepEqual(ids, want) {
		t.Errorf("contacts exported %v; want %v", ids, want)
	}
	if got := collCounts(res); got[collSubscriptions] != 2 || got["engagements/notes"] != 4 || got[collLists] != 4 {
		t.Errorf("export = %v; want both contacts' subscriptions (2), notes (4) and lists (4)", got)
	}
	for _, sb := range f.searches {
		if len(sb.FilterGroups) > 5 {
			t.Errorf("a search with %d filter groups; HubSpot takes at most 5", len(sb.FilterGroups))
		}
	}

	// An email with a wildcard is not searched by token.
	f.searches = nil
	if _, err := c.Export(t.Context(), subject("*@example.com"), &orderedRecorder{}); err != nil {
		t.Fatal(err)
	}
	for _, sb := range f.searches {
		for _, g := range sb.FilterGroups {
			for _, fl := range g.Filters {
				if fl.Operator == "CONTAINS_TOKEN" && strings.Contains(fl.Value, "*") {
					t.Errorf("searched %s CONTAINS_TOKEN %q: a wildcard", fl.PropertyName, fl.Value)
				}
			}
		}
	}

	// Opt-out: both contacts' primary addresses, both off list 101.
	res, err = c.OptOut(t.Context(), subject(adaEmail))
	if err != nil {
		t.Fatal(err)
	}
	if got := collCounts(res); got[collSubscriptions] != 2 || got[collLists] != 3 {
		t.Errorf("opt-out = %v; want 2 addresses opted out, 3 memberships pulled", got)
	}
	if !f.optedOut[oldEmail] || f.optedOut[carlEmail] {
		t.Errorf("opted out: %v; want the old contact's address, not Carl's", f.optedOut)
	}

	// Erasure: both contacts, by id, Carl and Bob kept.
	res, err = c.Erase(t.Context(), subject(adaEmail))
	if err != nil || res.Records != 2 {
		t.Fatalf("Erase = %+v, %v; want 2 contacts", res, err)
	}
	if f.contacts[adaID] != nil || f.contacts[oldID] != nil || f.contacts[carlID] == nil || f.contacts[bobID] == nil {
		t.Errorf("after Erase, contacts %v", slices.Sorted(func(yield func(string) bool) {
			for id := range f.contacts {
				if !yield(id) {
					return
				}
			}
		}))
	}
	for _, d := range f.deletes {
		if d["idProperty"] != "" || !idPattern.MatchString(d["objectId"]) {
			t.Errorf("gdpr-delete %v; want by id", d)
		}
	}
	if !f.blocked[oldEmail] || !f.blocked[adaEmail] {
		t.Errorf("blocked %v; want both contacts' emails", f.blocked)
	}
	if res, err := c.Erase(t.Context(), subject(adaEmail)); err != nil || res.Records != 0 {
		t.Errorf("second Erase = %+v, %v; want 0", res, err)
	}
}

// TestTooManyContacts: an address on more than maxContacts contacts is a
// permanent error, not a mass erasure.
func TestTooManyContacts(t *testing.T) {
	t.Parallel()
	f, srv := newFake(t)
	for i := range maxContacts + 1 {
		id := strconv.Itoa(1000 + i)
		f.contacts[id] = &fakeContact{id: id, email: "p" + id + "@example.com",
			props: map[string]string{"email": "p" + id + "@example.com", propAdditionalEmails: "info@example.com"}}
	}
	c := testConnector(t, srv, fakeToken)
	_, err := c.Erase(t.Context(), subject("info@example.com"))
	if !errors.Is(err, connectors.ErrPermanent) || len(f.deletes) != 0 {
		t.Fatalf("Erase of a shared address = %v (%d deletes); want a permanent error and nothing deleted", err, len(f.deletes))
	}
	if strings.Contains(err.Error(), "info@") {
		t.Errorf("the error quotes the email: %v", err)
	}
}

// TestEngagements: an export writes the engagements associated with the
// contact, every association page, read in batches (emails fewer at a
// time), with the engagement guides' properties; an engagement deleted
// since its association was read is left out.
func TestEngagements(t *testing.T) {
	t.Parallel()
	f, srv := newFake(t)
	f.seed()
	var emails []string
	f.engagements["emails"] = map[string]map[string]string{}
	for i := range 25 {
		id := strconv.Itoa(8500 + i)
		emails = append(emails, id)
		f.engagements["emails"][id] = map[string]string{"hs_email_subject": "order " + id, "hs_email_text": "Dear Ada"}
	}
	f.contacts[adaID].assocs["emails"] = append(emails, "8599") // 8599: deleted
	f.contacts[adaID].assocs["calls"] = []string{"8701"}
	f.engagements["calls"] = map[string]map[string]string{"8701": {"hs_call_title": "renewal", "hs_call_duration": "60000"}}
	c := testConnector(t, srv, fakeToken)
	out := &orderedRecorder{}
	res, err := c.Export(t.Context(), subject(adaEmail), out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{collContacts: 1, collLists: 3, collSubscriptions: 1,
		"engagements/emails": 25, "engagements/notes": 3, "engagements/calls": 1}
	if got := collCounts(res); !reflect.DeepEqual(got, want) {
		t.Errorf("export = %v; want %v", got, want)
	}
	if got := f.batches["emails"]; !reflect.DeepEqual(got, []int{10, 10, 6}) {
		t.Errorf("email batch reads of %v; want 10, 10, 6", got)
	}
	call := out.recs["engagements/calls"][0].(map[string]any)
	props := call["properties"].(map[string]*string)
	if p := props["hs_call_title"]; p == nil || *p != "renewal" {
		t.Errorf("call properties %v", props)
	}
	if _, ok := props["hs_call_body"]; !ok {
		t.Error("the call's body was not asked for")
	}
	for _, d := range out.recs["engagements/notes"] {
		if b := d.(map[string]any)["properties"].(map[string]*string)["hs_note_body"]; b != nil && strings.Contains(*b, "Builder") {
			t.Error("Bob's note was exported")
		}
	}

	// engagements: [notes] reads only notes.
	only, err := New("crm", Spec{Token: fakeToken, BaseURL: srv.URL, Engagements: &[]string{"notes"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err = only.Export(t.Context(), subject(adaEmail), &orderedRecorder{})
	if got := collCounts(res); err != nil || got["engagements/emails"] != 0 || got["engagements/notes"] != 3 {
		t.Errorf("engagements [notes]: %v, %v", got, err)
	}
	none, err := New("crm", Spec{Token: fakeToken, BaseURL: srv.URL, Engagements: &[]string{}})
	if err != nil {
		t.Fatal(err)
	}
	res, err = none.Export(t.Context(), subject(adaEmail), &orderedRecorder{})
	for _, cr := range res.Collections {
		if strings.HasPrefix(cr.Name, "engagements/") || err != nil {
			t.Errorf("engagements []: %+v, %v; want no engagement collection", cr, err)
		}
	}
	if _, err := New("crm", Spec{Token: fakeToken, Engagements: &[]string{"postal_mail"}}); err == nil {
		t.Error("an unknown engagement type was accepted")
	}
}

// TestEngagementsLarge: bodies larger than foreseen make the batches
// smaller, down to one; an engagement too large alone is a permanent
// error; a contact with more than maxEngagements of a type exports the
// first maxEngagements and says so.
func TestEngagementsLarge(t *testing.T) {
	t.Parallel()
	f, srv := newFake(t)
	f.seed()
	f.bigOver = 2
	c := testConnector(t, srv, fakeToken)
	f.contacts[adaID].assocs["emails"] = []string{"8111", "8111"}
	f.contacts[adaID].assocs["notes"] = []string{"8101", "8102", "8103"}
	res, err := c.Export(t.Context(), subject(adaEmail), &orderedRecorder{})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.batches["notes"]; !reflect.DeepEqual(got, []int{3, 1, 2}) && !reflect.DeepEqual(got, []int{3, 1, 1, 1}) {
		t.Errorf("note batch reads of %v; want 3 refused, then smaller", got)
	}
	if collCounts(res)["engagements/notes"] != 3 {
		t.Errorf("export = %v; want 3 notes", collCounts(res))
	}

	f.bigOver = -1 // every answer too long
	_, err = c.Export(t.Context(), subject(adaEmail), &orderedRecorder{})
	if !errors.Is(err, connectors.ErrPermanent) || !errors.Is(err, errTooLong) {
		t.Fatalf("an engagement too large: %v; want a permanent error", err)
	}

	f.bigOver = 0
	f.pageSize = 500
	var many []string
	f.engagements["tasks"] = map[string]map[string]string{}
	for i := range maxEngagements + 7 {
		id := strconv.Itoa(100000 + i)
		many = append(many, id)
		f.engagements["tasks"][id] = map[string]string{"hs_task_subject": "call Ada"}
	}
	f.contacts[adaID].assocs["tasks"] = many
	res, err = c.Export(t.Context(), subject(adaEmail), &orderedRecorder{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cr := range res.Collections {
		if cr.Name == "engagements/tasks" && (cr.Records != maxEngagements || !strings.Contains(cr.Note, "more than")) {
			t.Errorf("tasks: %+v; want %d and a note", cr, maxEngagements)
		}
	}
}

// TestSegmentMembers: every contact of the opt-out lists, with its primary
// and additional emails, page after page; an opt-out made while listing
// neither stops nor skips anyone; an opted-out contact is not listed
// again.
func TestSegmentMembers(t *testing.T) {
	t.Parallel()
	f, srv := newFake(t)
	f.seedSecondary()
	f.memberPage = 1
	c := testConnector(t, srv, fakeToken)
	if got := c.Segments(); !reflect.DeepEqual(got, []string{collLists}) {
		t.Errorf("Segments = %v", got)
	}
	list := func(optOut string) []string {
		var got []string
		err := c.EachSegmentMember(t.Context(), func(seg string, m connectors.Subject) error {
			got = append(got, seg+" "+strings.Join(m.Values("email"), ","))
			if slices.Contains(m.Values("email"), optOut) {
				if _, err := c.OptOut(t.Context(), m); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	ada, bob, old := "lists "+adaEmail+","+adaWork, "lists "+bobEmail, "lists "+oldEmail+",a.l@example.net,ADA@example.com"
	// 101: Ada, the old contact, Bob (by id); 102: Ada.
	if got, want := list(""), []string{ada, old, bob, ada}; !reflect.DeepEqual(got, want) {
		t.Errorf("listing = %q; want %q", got, want)
	}
	// Ada opted out on meeting her: the old contact leaves the lists with
	// her (her address is on it) before it is met; Bob, after the cursor,
	// still is.
	if got, want := list(adaEmail), []string{ada, bob}; !reflect.DeepEqual(got, want) {
		t.Errorf("opting out while listing: %q; want %q", got, want)
	}
	if got, want := list(""), []string{bob}; !reflect.DeepEqual(got, want) {
		t.Errorf("after the opt-out, listing = %q; want %q", got, want)
	}
	if n := slices.Max(f.batches["contacts"]); n > batchRead {
		t.Errorf("a contacts batch read of %d", n)
	}

	none, err := New("crm", Spec{Token: fakeToken, BaseURL: srv.URL, OptOut: &OptOutSpec{}})
	if err != nil {
		t.Fatal(err)
	}
	sent := len(f.sent)
	if err := none.EachSegmentMember(t.Context(), func(string, connectors.Subject) error { return errors.New("called") }); err != nil || none.Segments() != nil || len(f.sent) != sent {
		t.Errorf("no opt-out lists: Segments %v, EachSegmentMember %v, %d requests", none.Segments(), err, len(f.sent)-sent)
	}

	gone, err := New("crm", Spec{Token: fakeToken, BaseURL: srv.URL, OptOut: &OptOutSpec{Lists: []string{"999"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := gone.EachSegmentMember(t.Context(), func(string, connectors.Subject) error { return nil }); !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("a list HubSpot does not hold: %v; want a permanent error, not an empty list", err)
	}

	stop := errors.New("stop")
	err = c.EachSegmentMember(t.Context(), func(string, connectors.Subject) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("fn's error: %v; want it returned, wrapped", err)
	}
}

// collCounts returns the records res reports per collection, zeros left out.
func collCounts(res connectors.Result) map[string]int64 {
	out := map[string]int64{}
	for _, c := range res.Collections {
		if c.Records != 0 {
			out[c.Name] += c.Records
		}
	}
	return out
}

// TestEraseBlocksAdditionalEmails: erasing a subject HubSpot holds only
// among a contact's additional emails deletes that contact by id, which
// blocks its primary address, and then blocks the subject's own address by
// email; an address HubSpot holds as a primary one is not sent again, and
// an address it does not hold at all is never blocked.
func TestEraseBlocksAdditionalEmails(t *testing.T) {
	t.Parallel()
	f, srv := newFake(t)
	f.seedSecondary()
	c := testConnector(t, srv, fakeToken)
	const alias = "a.l@example.net" // only among the old contact's additional emails
	res, err := c.Erase(t.Context(), subject(alias, "nobody@example.com"))
	if err != nil || res.Records != 1 {
		t.Fatalf("Erase = %+v, %v; want the old contact", res, err)
	}
	if f.contacts[oldID] != nil || f.contacts[adaID] == nil {
		t.Errorf("after Erase: old contact kept %v, Ada's kept %v; want only Ada's", f.contacts[oldID] != nil, f.contacts[adaID] != nil)
	}
	if !f.blocked[alias] || !f.blocked[oldEmail] || f.blocked["nobody@example.com"] {
		t.Errorf("blocked %v; want the alias and the old contact's address, never an address HubSpot did not hold", f.blocked)
	}
	var byEmail []string
	for _, d := range f.deletes {
		if d["idProperty"] == "email" {
			byEmail = append(byEmail, d["objectId"])
		}
	}
	if !slices.Equal(byEmail, []string{alias}) {
		t.Errorf("gdpr-deletes by email %v; want the alias only", byEmail)
	}
}
