package workers

import "testing"

// TestQuoteBlock: stored free text is quoted line by line, and what does
// not print (controls, bidi overrides, fillers) is dropped even if the store
// holds it.
func TestQuoteBlock(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"no records kept", "    > no records kept\n"},
		{"two\r\nlines", "    > two\n    > lines\n"},
		{"a\u202eb\u0000c\u3164d\u200be", "    > abcde\n"},
		{"tab\there", "    > tab here\n"},
	} {
		if got := quoteBlock(tc.in); got != tc.want {
			t.Errorf("quoteBlock(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
