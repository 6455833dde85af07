package app_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/app/suppression"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/teststore"
)

// suppressionSetup returns a service whose suppression set reads st.
func suppressionSetup(t *testing.T) (*app.Service, *teststore.Store, dsr.SuppressionKey) {
	t.Helper()
	st := teststore.Open(t, nil)
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	key := idx.SuppressionKey()
	set := suppression.NewSet(st, key)
	return app.New(app.Deps{Store: st, Queue: &queue{}, Index: idx, Suppressions: set}), st, key
}

func suppress(t *testing.T, st *teststore.Store, scope dsr.Scope, hashes ...string) {
	t.Helper()
	entries := make([]dsr.Suppression, len(hashes))
	for i, h := range hashes {
		entries[i] = dsr.Suppression{Hash: h, Scope: scope, Source: dsr.ConsentAPI, At: time.Now()}
	}
	if _, err := st.Suppress(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
}

// TestCheckSuppressions checks plain and hashed identities, valid and not,
// against suppressions written just before: a bulk check sees them at once
// (it refreshes first), and reports bad identities by index without
// quoting them.
func TestCheckSuppressions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, st, key := suppressionSetup(t)
	suppress(t, st, dsr.ScopeMarketing, key.Hash(dsr.KindEmail, "ada@example.com"))
	suppress(t, st, dsr.ScopeAll, key.Hash(dsr.KindPhone, "+442079460958"))
	suppress(t, st, dsr.ScopeProfiling, key.Hash(dsr.KindCustomerID, "cus_1"))

	qs := []app.SuppressionQuery{
		{Kind: dsr.KindEmail, Value: "  Ada@Example.COM "},                  // 0: normalised, suppressed for marketing
		{Kind: dsr.KindPhone, Value: "+44 20 7946 0958"},                    // 1: deleted: suppressed for every scope
		{Hash: key.Hash(dsr.KindCustomerID, "cus_1")},                       // 2: profiling only
		{Kind: dsr.KindEmail, Value: "bob@example.com"},                     // 3: not suppressed
		{Kind: dsr.KindEmail, Value: "not-an-email"},                        // 4: invalid value
		{Kind: "fax", Value: "1"},                                           // 5: unknown kind
		{Hash: strings.ToUpper(key.Hash(dsr.KindEmail, "ada@example.com"))}, // 6: malformed hash
		{Hash: key.Hash(dsr.KindEmail, "ada@example.com"), Kind: "email"},   // 7: both
		{}, // 8: nothing
		{Hash: key.Hash(dsr.KindEmail, "ada@example.com")}, // 9: hashed, suppressed for marketing
	}
	got, err := svc.CheckSuppressions(ctx, dsr.ScopeMarketing, qs)
	if err != nil {
		t.Fatal(err)
	}
	want := app.SuppressionCheck{Scope: dsr.ScopeMarketing, Checked: len(qs), Suppressed: []int{0, 1, 9}, Invalid: []app.InvalidIdentity{
		{Index: 4, Reason: "identities[4].value: must be a plain email address such as name@example.com"},
		{Index: 5, Reason: "identities[5].kind: must be one of email, customer_id, phone, advertising_id, device_id"},
		{Index: 6, Reason: `identities[6].hash: must be a suppression hash: a kind (email, customer_id, phone, advertising_id, device_id), ":" and 64 lower-case hex digits`},
		{Index: 7, Reason: "identities[7].hash: give either kind and value, or hash, not both"},
		{Index: 8, Reason: "identities[8].kind: give kind and value, or hash"},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("check (-want +got):\n%s", diff)
	}
	if s := fmt.Sprint(got.Invalid); strings.Contains(s, "not-an-email") || strings.Contains(strings.ToLower(s), "ada@") {
		t.Errorf("reasons quote the values: %s", s)
	}
	got, err = svc.CheckSuppressions(ctx, dsr.ScopeProfiling, qs[:4])
	if err != nil || !cmp.Equal(got.Suppressed, []int{1, 2}) {
		t.Errorf("profiling: %v, %v; want [1 2]", got.Suppressed, err)
	}

	// Written after the set was loaded: the next bulk check sees it.
	suppress(t, st, dsr.ScopeMarketing, key.Hash(dsr.KindEmail, "bob@example.com"))
	got, err = svc.CheckSuppressions(ctx, dsr.ScopeMarketing, qs[:4])
	if err != nil || !cmp.Equal(got.Suppressed, []int{0, 1, 3}) {
		t.Errorf("after a new suppression: %v, %v; want [0 1 3]", got.Suppressed, err)
	}
	if _, err := st.LiftSuppressions(ctx, []string{key.Hash(dsr.KindEmail, "ada@example.com")}, dsr.ScopeMarketing, "t", "opted in"); err != nil {
		t.Fatal(err)
	}
	got, err = svc.CheckSuppressions(ctx, dsr.ScopeMarketing, qs[:4])
	if err != nil || !cmp.Equal(got.Suppressed, []int{1, 3}) {
		t.Errorf("after a lift: %v, %v; want [1 3]", got.Suppressed, err)
	}

	one, err := svc.CheckSuppression(ctx, dsr.ScopeSaleShare, app.SuppressionQuery{Kind: dsr.KindPhone, Value: "0044 20 7946 0958"})
	if err != nil || !one.Suppressed || !cmp.Equal(one.Scopes, []dsr.Scope{dsr.ScopeAll}) {
		t.Errorf("single check of the deleted phone: %+v, %v", one, err)
	}
	one, err = svc.CheckSuppression(ctx, dsr.ScopeMarketing, app.SuppressionQuery{Hash: key.Hash(dsr.KindCustomerID, "cus_1")})
	if err != nil || one.Suppressed || !cmp.Equal(one.Scopes, []dsr.Scope{dsr.ScopeProfiling}) {
		t.Errorf("single check of cus_1 for marketing: %+v, %v", one, err)
	}
}

// TestCheckSuppressionsRefuses: a bad scope, too many identities, or a
// bad single identity fail the call as a validation error.
func TestCheckSuppressionsRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _, _ := suppressionSetup(t)
	var ve *dsr.ValidationError
	if _, err := svc.CheckSuppressions(ctx, "email", nil); !errors.As(err, &ve) || ve.Fields[0].Field != "scope" {
		t.Errorf("bad scope: %v", err)
	}
	if _, err := svc.CheckSuppressions(ctx, dsr.ScopeAll, make([]app.SuppressionQuery, app.MaxSuppressionChecks+1)); !errors.As(err, &ve) || ve.Fields[0].Field != "identities" {
		t.Errorf("10,001 identities: %v", err)
	}
	if got, err := svc.CheckSuppressions(ctx, dsr.ScopeAll, make([]app.SuppressionQuery, app.MaxSuppressionChecks)); err != nil || len(got.Invalid) != app.MaxSuppressionChecks {
		t.Errorf("10,000 empty identities: %d invalid, %v; want all invalid", len(got.Invalid), err)
	}
	if _, err := svc.CheckSuppression(ctx, dsr.ScopeAll, app.SuppressionQuery{Kind: dsr.KindEmail, Value: "x"}); !errors.As(err, &ve) || ve.Fields[0].Field != "value" {
		t.Errorf("bad single identity: %v", err)
	}
	off := app.New(app.Deps{})
	if _, err := off.CheckSuppressions(ctx, dsr.ScopeAll, nil); !errors.Is(err, app.ErrSuppressionsOff) {
		t.Errorf("no set: %v", err)
	}
}

// TestCheckSuppressionsFansOut checks a batch big enough to be split over
// goroutines: every suppressed identity is found, in order, whichever
// goroutine hashed it.
func TestCheckSuppressionsFansOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, st, key := suppressionSetup(t)
	qs := make([]app.SuppressionQuery, 5000)
	var hashes []string
	var want []int
	for i := range qs {
		v := fmt.Sprintf("person%d@example.com", i)
		qs[i] = app.SuppressionQuery{Kind: dsr.KindEmail, Value: v}
		if i%7 == 3 {
			hashes = append(hashes, key.Hash(dsr.KindEmail, v))
			want = append(want, i)
		}
	}
	suppress(t, st, dsr.ScopeSaleShare, hashes...)
	got, err := svc.CheckSuppressions(ctx, dsr.ScopeSaleShare, qs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got.Suppressed); diff != "" || len(got.Invalid) != 0 {
		t.Errorf("suppressed (-want +got):\n%s\ninvalid: %v", diff, got.Invalid)
	}
}

// lookalikes are addresses intake refuses (dsr.NormalizeGiven) that a
// mailer may deliver to grace@example.com: a check, a filter or an import
// must not take them for valid identities of someone else.
var lookalikes = []string{
	"grace@ｅｘａｍｐｌｅ.com",       // fullwidth
	"grace@exam\u00adple.com", // soft hyphen
	"grace@example.com\u200b", // zero-width space
	"gra\u0300ce@example.com", // decomposed accent
	"grace\xff@example.com",   // invalid UTF-8
	"grace@example.com\ufeff", // byte order mark
	"gr\u200dace@example.com", // zero-width joiner
}

// TestCheckSuppressionsRefusesLookalikes: an address intake would refuse
// is reported invalid, at its index, not "not suppressed".
func TestCheckSuppressionsRefusesLookalikes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, st, key := suppressionSetup(t)
	suppress(t, st, dsr.ScopeAll, key.Hash(dsr.KindEmail, "grace@example.com"))
	qs := []app.SuppressionQuery{{Kind: dsr.KindEmail, Value: "Grace@Example.com"}}
	for _, v := range lookalikes {
		qs = append(qs, app.SuppressionQuery{Kind: dsr.KindEmail, Value: v})
	}
	got, err := svc.CheckSuppressions(ctx, dsr.ScopeMarketing, qs)
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(got.Suppressed, []int{0}) {
		t.Errorf("suppressed %v, want [0]", got.Suppressed)
	}
	var invalid []int
	for _, iv := range got.Invalid {
		invalid = append(invalid, iv.Index)
	}
	if want := []int{1, 2, 3, 4, 5, 6, 7}; !cmp.Equal(invalid, want) {
		t.Errorf("invalid %v, want %v: %+v", invalid, want, got.Invalid)
	}
	for _, v := range lookalikes {
		_, err := svc.CheckSuppression(ctx, dsr.ScopeMarketing, app.SuppressionQuery{Kind: dsr.KindEmail, Value: v})
		var ve *dsr.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("single check of %q: %v, want a validation error", v, err)
		}
	}
}
