package dsr_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/dsr"
)

// TestSuppressionKey: the suppression hash is what a pipeline given the
// key computes by the documented recipe, differs from the blind index's,
// and has the form ValidSuppressionHash accepts.
func TestSuppressionKey(t *testing.T) {
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	k := idx.SuppressionKey()
	got := k.Hash(dsr.KindEmail, "ada@example.com")
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte("email\x00ada@example.com"))
	if want := "email:" + hex.EncodeToString(m.Sum(nil)); got != want {
		t.Errorf("hash %s; want %s", got, want)
	}
	if got == idx.Hash(dsr.KindEmail, "ada@example.com") {
		t.Error("the suppression hash equals the blind index's: handing the key out would hand out the blind index")
	}
	if !dsr.ValidSuppressionHash(got) {
		t.Errorf("%s is not valid", got)
	}
	for _, bad := range []string{"", "email:", "fax:" + strings.Repeat("a", 64), "email:" + strings.Repeat("A", 64), "email:" + strings.Repeat("a", 63), got + "0"} {
		if dsr.ValidSuppressionHash(bad) {
			t.Errorf("%q is valid", bad)
		}
	}
	if n := len(k.HashAll([]dsr.Identity{{Kind: dsr.KindEmail, Value: "a@b.co"}, {Kind: dsr.KindEmail, Value: "a@b.co"}, {Kind: dsr.KindPhone, Value: "+4915112345678"}})); n != 2 {
		t.Errorf("HashAll: %d distinct; want 2", n)
	}
}

func TestScopes(t *testing.T) {
	for _, tt := range []struct {
		in      []string
		wantErr string
	}{
		{[]string{"marketing", "sale_share"}, ""},
		{[]string{"marketing", "marketing"}, "twice"},
		{[]string{"spam"}, `unknown scope "spam"`},
		{nil, ""},
	} {
		_, err := dsr.ParseScopes(tt.in)
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("ParseScopes(%v) = %v; want %q", tt.in, err, tt.wantErr)
		}
	}
	if !dsr.ScopeAll.Covers(dsr.ScopeMarketing) || dsr.ScopeMarketing.Covers(dsr.ScopeSaleShare) || !dsr.ScopeProfiling.Covers(dsr.ScopeProfiling) {
		t.Error("Covers")
	}
	if s := dsr.DefaultOptOutScopes(true); len(s) != 1 || s[0] != dsr.ScopeSaleShare {
		t.Errorf("GPC default %v", s)
	}
	if s := dsr.DefaultOptOutScopes(false); len(s) != 3 {
		t.Errorf("default %v", s)
	}
}
