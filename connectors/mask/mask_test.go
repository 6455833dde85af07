package mask_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors/mask"
)

func TestParse(t *testing.T) {
	t.Parallel()
	var got map[string]mask.Strategy
	src := "name: null\nnick: ~\nemail: email_format\nphone: random\nref: hmac\nnote: {fixed: \"[erased]\"}\nage: {fixed: 0}\n"
	if err := yaml.Unmarshal([]byte(src), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"name": "null", "nick": "null", "email": "email_format", "phone": "random", "ref": "hmac", "note": "{fixed: [erased]}", "age": "{fixed: 0}"}
	for f, w := range want {
		if got[f].String() != w {
			t.Errorf("%s = %s, want %s", f, got[f], w)
		}
	}
	for _, tt := range []struct{ src, want string }{
		{"x: blank", `line 1: unknown mask strategy "blank"`},
		{"x: {fixed: [1, 2]}", "line 1: fixed takes one plain value"},
		{"x:\n  hash: sha1", "line 2: unknown mask strategy"},
		{"x: {fixed: 1, other: 2}", "line 1: unknown mask strategy"},
	} {
		var m map[string]mask.Strategy
		err := yaml.Unmarshal([]byte(tt.src), &m)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.src, err, tt.want)
		}
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	m, err := mask.NewMasker([]byte("a mask key of 32 bytes, exactly!"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := mask.NewMasker([]byte("another mask key of some length"))
	apply := func(m *mask.Masker, s mask.Strategy, v any) any {
		t.Helper()
		got, err := m.Apply(s, v)
		if err != nil {
			t.Fatalf("Apply(%s, %v): %v", s, v, err)
		}
		return got
	}
	const email = "Ada.Lovelace@Example.com"
	if got := apply(m, mask.Strategy{Kind: mask.Null}, email); got != nil {
		t.Errorf("null: %v", got)
	}
	if got := apply(m, mask.Strategy{Kind: mask.Fixed, Value: "[erased]"}, email); got != "[erased]" {
		t.Errorf("fixed: %v", got)
	}
	h := apply(m, mask.Strategy{Kind: mask.HMAC}, email).(string)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(h) || h != apply(m, mask.Strategy{Kind: mask.HMAC}, email) {
		t.Errorf("hmac: %q, not 64 hex or not deterministic", h)
	}
	if h == apply(other, mask.Strategy{Kind: mask.HMAC}, email) || h == apply(m, mask.Strategy{Kind: mask.HMAC}, "ada.lovelace@example.com") {
		t.Error("hmac does not depend on the key and the exact value")
	}
	e := apply(m, mask.Strategy{Kind: mask.EmailFormat}, email).(string)
	if !regexp.MustCompile(`^redacted-[0-9a-f]{16}@invalid$`).MatchString(e) || strings.Contains(e, "ada") {
		t.Errorf("email_format: %q", e)
	}
	if e != apply(m, mask.Strategy{Kind: mask.EmailFormat}, " ada.lovelace@example.COM") {
		t.Error("email_format differs for the same address written otherwise: a unique column could get two masks of one person")
	}
	if e == apply(m, mask.Strategy{Kind: mask.EmailFormat}, "grace@example.com") {
		t.Error("email_format is the same for two addresses: a unique column would refuse the second")
	}
	r := apply(m, mask.Strategy{Kind: mask.Random}, "Zoë Ünal")
	if utf8.RuneCountInString(r.(string)) != 8 || r == "Zoë Ünal" || !regexp.MustCompile(`^[A-Za-z0-9]+$`).MatchString(r.(string)) {
		t.Errorf("random: %q, want 8 letters and digits", r)
	}
	if got := apply(m, mask.Strategy{Kind: mask.HMAC}, nil); got != nil {
		t.Errorf("nil masked to %v", got)
	}
	if _, err := m.Apply(mask.Strategy{Kind: mask.Random}, 42); !errors.Is(err, mask.ErrNotText) {
		t.Errorf("random on a number: %v, want ErrNotText", err)
	}
	var keyless *mask.Masker
	if _, err := keyless.Apply(mask.Strategy{Kind: mask.HMAC}, email); err == nil || !strings.Contains(err.Error(), "mask key") {
		t.Errorf("hmac without a key: %v", err)
	}
	if _, err := mask.NewMasker([]byte("short")); err == nil {
		t.Error("a 5-byte key was accepted")
	}
	for _, s := range []mask.Strategy{{Kind: mask.Null}, {Kind: mask.Fixed, Value: "x"}, {Kind: mask.HMAC}, {Kind: mask.EmailFormat}} {
		out := apply(m, s, email)
		if masked, known := mask.Masked(s, out); !masked || !known {
			t.Errorf("%s: Masked(its own output) = %v, %v", s, masked, known)
		}
		if masked, _ := mask.Masked(s, email); masked {
			t.Errorf("%s: Masked(a plain address) = true", s)
		}
	}
	if _, known := mask.Masked(mask.Strategy{Kind: mask.Random}, "abc"); known {
		t.Error("random claims to recognise its output")
	}
}
