package dsr_test

import (
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/dsar-project/dsar/dsr"
)

// e164 is a phone number as Normalize writes it.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// blindHash is the form of a blind index hash of kind k.
func blindHash(k dsr.Kind) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(string(k)) + `:[0-9a-f]{64}$`)
}

// FuzzNormalize: for every kind of dsr.Kinds (whatever kinds there are),
// Normalize and NormalizeGiven never panic; what they return is valid for
// its kind and normalises to itself (so a value stored, looked up or
// hashed again keeps its meaning); NormalizeGiven only ever refuses more
// than Normalize, never changes the canonical form; and the blind index
// hash of a canonical value is the same under another index of the same
// key and for the value with white space around it.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"ada@example.com", " Ada@Example.COM ", "a@b", "a@[127.0.0.1]", "a@127.1", "Ada <ada@example.com>",
		"\"a b\"@example.com", "аda@example.com", "ａda@example.com", "ada@xn--80ak6aa92e.com", "ada@xn--.com",
		"+44 20 7946 0958", "0044 (20) 7946-0958", "+0123456789", "++4420", "+4420794609581234",
		"cus_ada", " cus 42 ", "\u200bcus", "a\nb", "\xff", "", "   ",
	} {
		f.Add(s)
	}
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	same, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	if len(dsr.Kinds) == 0 {
		f.Fatal("dsr.Kinds is empty")
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, k := range dsr.Kinds {
			n, err := dsr.Normalize(k, raw)
			if err != nil {
				if n != "" {
					t.Fatalf("%s: a value returned with the error %v", k, err)
				}
			} else {
				checkCanonical(t, k, n)
				if again, err := dsr.Normalize(k, n); err != nil || again != n {
					t.Fatalf("%s: Normalize(%q) = %q, %v: not idempotent", k, n, again, err)
				}
				h := idx.Hash(k, n)
				if !blindHash(k).MatchString(h) {
					t.Fatalf("%s: hash %q", k, h)
				}
				if padded, err := dsr.Normalize(k, " \t"+n+"\n "); err != nil || idx.Hash(k, padded) != h || same.Hash(k, n) != h {
					t.Fatalf("%s: the hash of %q is not stable (%v)", k, n, err)
				}
			}
			g, gerr := dsr.NormalizeGiven(k, raw)
			if gerr != nil {
				if g != "" {
					t.Fatalf("%s: a given value returned with the error %v", k, gerr)
				}
				continue
			}
			if err != nil || g != n {
				t.Fatalf("%s: NormalizeGiven(%q) = %q but Normalize = %q, %v", k, raw, g, n, err)
			}
			if again, err := dsr.NormalizeGiven(k, g); err != nil || again != g {
				t.Fatalf("%s: NormalizeGiven(%q) = %q, %v: not idempotent", k, g, again, err)
			}
			if k == dsr.KindEmail || k == dsr.KindCustomerID {
				for _, r := range g {
					if unicode.IsControl(r) || r == '\u200b' || r == '\u2028' || r == '\u202e' {
						t.Fatalf("%s: given value %q holds %U", k, g, r)
					}
				}
			}
		}
	})
}

// checkCanonical fails t unless n is a canonical value of kind k: no
// white space around it, and for the kinds whose form is known, that
// form.
func checkCanonical(t *testing.T, k dsr.Kind, n string) {
	t.Helper()
	if n == "" || strings.TrimSpace(n) != n {
		t.Fatalf("%s: canonical value %q is empty or has white space around it", k, n)
	}
	switch k {
	case dsr.KindEmail:
		a, err := mail.ParseAddress(n)
		if err != nil || a.Address != n || strings.ToLower(n) != n || len(n) > 254 || !strings.Contains(n[strings.LastIndexByte(n, '@'):], ".") {
			t.Fatalf("email: canonical value %q is not a lower-case plain address (%v)", n, err)
		}
	case dsr.KindPhone:
		if !e164.MatchString(n) {
			t.Fatalf("phone: canonical value %q is not E.164", n)
		}
	case dsr.KindCustomerID:
		if len(n) > 128 || strings.IndexFunc(n, unicode.IsControl) >= 0 {
			t.Fatalf("customer_id: canonical value %q is too long or holds control characters", n)
		}
	}
}
