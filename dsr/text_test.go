package dsr_test

import (
	"strings"
	"testing"

	"github.com/dsar-project/dsar/dsr"
)

// TestCheckText: what free text may hold before it reaches an email or a
// page; one line refuses every line break, prose takes \n and tabs.
func TestCheckText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		oneLine  bool // CheckText(in, OneLine) passes
		lines    bool // CheckText(in, Lines) passes
		wantText string
	}{
		{"plain", "Privacy Helpers Inc.", true, true, ""},
		{"accents and quotes", `José "Pepe" O'Brien – Ærø`, true, true, ""},
		{"other scripts", "Алиса Смирнова, 山田太郎, محمد", true, true, ""},
		{"Persian with a ZWNJ inside a word", "می\u200cخواهم", true, true, ""},
		{"emoji ZWJ sequence", "family 👨\u200d👩\u200d👧", true, true, ""},
		{"line feed", "a\nreply to this address", false, true, "one line"},
		{"tab", "a\tb", false, true, "control"},
		{"CRLF", "a\r\nb", false, false, "line"},
		{"CR", "a\rb", false, false, "line"},
		{"line separator", "a\u2028b", false, false, "line"},
		{"paragraph separator", "a\u2029b", false, false, "line"},
		{"NEL (C1)", "a\u0085b", false, false, "line"},
		{"NUL", "a\x00b", false, false, "control"},
		{"ESC", "a\x1b[2Jb", false, false, "control"},
		{"DEL", "a\x7fb", false, false, "control"},
		{"C1 CSI", "a\u009bb", false, false, "control"},
		{"RLO", "evil\u202egnp.exe", false, false, "bidirectional"},
		{"LRE", "a\u202ab", false, false, "bidirectional"},
		{"PDF", "a\u202cb", false, false, "bidirectional"},
		{"RLI", "a\u2067b", false, false, "bidirectional"},
		{"PDI", "a\u2069b", false, false, "bidirectional"},
		{"LRM", "a\u200eb", false, false, "bidirectional"},
		{"RLM", "a\u200fb", false, false, "bidirectional"},
		{"ALM", "a\u061cb", false, false, "bidirectional"},
		{"zero-width space", "a\u200bb", false, false, "invisible"},
		{"word joiner", "a\u2060b", false, false, "invisible"},
		{"BOM", "\ufeffab", false, false, "invisible"},
		{"soft hyphen", "a\u00adb", false, false, "invisible"},
		{"tag character", "a\U000E0041b", false, false, "invisible"},
		{"Hangul filler", "a\u3164b", false, false, "invisible"},
		{"ZWJ at the start", "\u200dab", false, false, "invisible"},
		{"ZWNJ beside a space", "a \u200cb", false, false, "invisible"},
		{"invalid UTF-8", "a\xffb", false, false, "UTF-8"},
		{"replacement character", "a\ufffdb", false, false, "UTF-8"},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			rule dsr.TextRule
			ok   bool
		}{{dsr.OneLine, tt.oneLine}, {dsr.Lines, tt.lines}} {
			err := dsr.CheckText(tt.in, c.rule)
			if (err == nil) != c.ok {
				t.Errorf("%s, rule %d: error %v, want ok %v", tt.name, c.rule, err, c.ok)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("%s, rule %d: error %q does not say %q", tt.name, c.rule, err, tt.wantText)
			}
			if err != nil && tt.in != "" && strings.Contains(err.Error(), tt.in) {
				t.Errorf("%s: the error quotes the input", tt.name)
			}
		}
	}
}

// TestNormalizeGiven: identities given at intake are refused when they
// could pass for another or hide characters; the canonical form of those
// accepted is Normalize's, so the blind index keeps its meaning.
func TestNormalizeGiven(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		kind     dsr.Kind
		in       string
		want     string // "" when refused
		wantText string
	}{
		{"plain", dsr.KindEmail, " Ada@Example.com ", "ada@example.com", ""},
		{"gmail dots kept", dsr.KindEmail, "a.da+x@gmail.com", "a.da+x@gmail.com", ""},
		{"all-Cyrillic IDN", dsr.KindEmail, "алиса@пример.рф", "алиса@пример.рф", ""},
		{"all-Cyrillic punycode label", dsr.KindEmail, "ada@xn--e1afmkfd.xn--p1ai", "ada@xn--e1afmkfd.xn--p1ai", ""},
		{"Japanese local part", dsr.KindEmail, "山田たろうカタカナ@example.jp", "山田たろうカタカナ@example.jp", ""},
		{"Latin with accents", dsr.KindEmail, "josé@exämple.com", "josé@exämple.com", ""},
		{"IPv4 literal", dsr.KindEmail, "a@[127.0.0.1]", "", "IP address"},
		{"IPv6 literal", dsr.KindEmail, "a@[IPv6:::1]", "", ""},
		{"bare IPv4", dsr.KindEmail, "a@127.0.0.1", "", "IP address"},
		{"zero-width space in the local part", dsr.KindEmail, "ad\u200ba@example.com", "", "invisible"},
		{"zero-width joiner in the domain", dsr.KindEmail, "ada@exa\u200dmple.com", "", "invisible"},
		{"soft hyphen", dsr.KindEmail, "ada@exam\u00adple.com", "", "invisible"},
		{"bidi override", dsr.KindEmail, "ada\u202e@example.com", "", "bidirectional"},
		{"Cyrillic a in a Latin local part", dsr.KindEmail, "\u0430da@example.com", "", "before @"},
		{"Cyrillic o in a Latin domain label", dsr.KindEmail, "ada@examp\u043ele.com", "", "label"},
		{"Greek omicron beside Latin", dsr.KindEmail, "ada@g\u03bfogle.com", "", "label"},
		{"mixed punycode label", dsr.KindEmail, "ada@xn--pypal-4ve.com", "", "label"},
		{"bad punycode", dsr.KindEmail, "ada@xn--99999999999.com", "", "punycode"},
		{"invalid UTF-8", dsr.KindEmail, "ad\xffa@example.com", "", "UTF-8"},
		{"replacement character", dsr.KindEmail, "ad\ufffda@example.com", "", "UTF-8"},
		{"fullwidth letter in the local part", dsr.KindEmail, "\uff41da@example.com", "", "compatibility"},
		{"fullwidth letter in the domain", dsr.KindEmail, "ada@\uff45xample.com", "", "compatibility"},
		{"mathematical bold letter", dsr.KindEmail, "\U0001d41ada@example.com", "", "compatibility"},
		{"decomposed accent", dsr.KindEmail, "jose\u0301@example.com", "", "compatibility"},
		{"variation selector", dsr.KindEmail, "ada\ufe0f@example.com", "", "invisible"},
		{"private-use character", dsr.KindEmail, "ada\ue000@example.com", "", "private-use"},
		{"numeric top-level label (inet_aton reads 127.1 as 127.0.0.1)", dsr.KindEmail, "ada@127.1", "", "IP address"},
		{"hexadecimal IPv4", dsr.KindEmail, "ada@0x7f.0.0.1", "", "IP address"},
		{"hexadecimal last part", dsr.KindEmail, "ada@127.0.0.0x1", "", "IP address"},
		{"IDN top-level label", dsr.KindEmail, "ada@example.xn--p1ai", "ada@example.xn--p1ai", ""},
		{"customer id", dsr.KindCustomerID, " cus_42 ", "cus_42", ""},
		{"customer id with a bidi override", dsr.KindCustomerID, "cus\u202e42", "", "bidirectional"},
		{"customer id with a zero-width space", dsr.KindCustomerID, "cus\u200b42", "", "invisible"},
		{"phone", dsr.KindPhone, "+44 20 7946 0958", "+442079460958", ""},
	}
	for _, tt := range tests {
		got, err := dsr.NormalizeGiven(tt.kind, tt.in)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("%s: NormalizeGiven(%q) = %q, %v; want %q", tt.name, tt.in, got, err, tt.want)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), tt.wantText) {
			t.Errorf("%s: error %q does not say %q", tt.name, err, tt.wantText)
		}
		if err == nil {
			// The canonical form is Normalize's: the blind index keeps its meaning.
			if n, _ := dsr.Normalize(tt.kind, tt.in); n != got {
				t.Errorf("%s: NormalizeGiven %q, Normalize %q", tt.name, got, n)
			}
		}
	}
}
