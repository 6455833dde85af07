package sqldb

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRecordEncoderMatchesEncodingJSON: the encoder's direct paths write
// the bytes encoding/json (without HTML escaping) writes for the same
// values.
func TestRecordEncoderMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2024, 2, 29, 13, 4, 5, 123456789, time.FixedZone("", 3600))
	cases := []struct {
		v      any
		dbType string
	}{
		{nil, "TEXT"}, {true, "BOOL"}, {false, "BOOL"}, {int64(-42), "INT8"}, {int64(math.MaxInt64), "INT8"},
		{int32(7), "INT4"}, {uint64(math.MaxUint64), "UNSIGNED BIGINT"},
		{"plain text, 12 Engine Row", "TEXT"}, {"", "TEXT"}, {`quote " and \ backslash`, "TEXT"}, {`say "hi"`, "TEXT"}, {`back\slash`, "TEXT"},
		{"tab\tnew\nline\x01\x7f", "TEXT"}, {"<b>&amp;</b>", "TEXT"}, {"Zoë, ünïcode \u2028 \u2029", "TEXT"},
		{"bad \xff utf-8", "TEXT"}, {[]byte("bad \xff bytes"), "VARCHAR"}, {[]byte("text as bytes"), "VARCHAR"},
		{[]byte{0, 1, 2, 255}, "BYTEA"},
		{"12.50", "NUMERIC"}, {"-0.5e10", "NUMERIC"}, {"NaN", "NUMERIC"}, {"007", "NUMERIC"}, {[]byte("123456789012345678901234567890"), "DECIMAL"},
		{`{"a": [1, 2, {"b": "<c>"}], "d": null}`, "JSONB"}, {[]byte(`[ 1 , "x" ]`), "JSON"}, {`{not json`, "JSON"},
		{1.5, "FLOAT8"}, {1e21, "FLOAT8"}, {math.Inf(1), "FLOAT8"}, {float32(0.1), "FLOAT4"},
		{at, "TIMESTAMPTZ"}, {at, "DATE"}, {[]int{1}, "INT4[]"},
		// The direct paths' edges: floats in and out of exponent form,
		// every control character, text that is not UTF-8, runes of
		// every width, years beyond 9999 and before 0 (written as text,
		// from jsonValue: encoding/json's error for such a time.Time is
		// never met).
		{0.0, "FLOAT8"}, {math.Copysign(0, -1), "FLOAT8"}, {1e-6, "FLOAT8"}, {9.99e-7, "FLOAT8"}, {1e-7, "FLOAT8"}, {-1.5e-10, "FLOAT8"},
		{1e20, "FLOAT8"}, {-1e21, "FLOAT8"}, {1.7976931348623157e308, "FLOAT8"}, {5e-324, "FLOAT8"}, {123456789.125, "FLOAT8"},
		{float32(3.4028235e38), "FLOAT4"}, {math.NaN(), "FLOAT8"}, {math.Inf(-1), "FLOAT8"},
		{int64(math.MinInt64), "INT8"}, {int32(math.MinInt32), "INT4"}, {7, "INT"}, {uint64(0), "UNSIGNED BIGINT"},
		{controls(), "TEXT"}, {"\b\f\x7f\u00a0 é 中 😀 \u2028x\u2029", "TEXT"}, {"end \xe2\x80", "TEXT"}, {"\xc0\xaf ok", "VARCHAR"},
		{[]byte{}, "BYTEA"}, {[]byte("\xff\xfe"), "BLOB"},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "TIMESTAMPTZ"}, {time.Date(-1, 12, 31, 23, 59, 59, 0, time.UTC), "TIMESTAMP"},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "DATE"},
		{[]byte("12.5"), "NUMERIC"}, {[]byte("1e400"), "DECIMAL"}, {[]byte("x1"), "NUMERIC"}, {[]byte("Zoë \u2028 \"q\" \x01"), "TEXT"}, {[]byte(""), "TEXT"},
		{"", "JSONB"}, {[]byte(`{"a":1} x`), "JSON"}, {" [1,\n 2] ", "JSON"}, {[]byte("\"\xff\""), "JSONB"}, {time.Time{}, "TIMESTAMP"},
	}
	cols := make([]string, len(cases))
	types := make([]string, len(cases))
	vals := make([]any, len(cases))
	var want bytes.Buffer
	want.WriteByte('{')
	for i, c := range cases {
		cols[i] = "col <" + strings.Repeat("x", i) + ">"
		types[i], vals[i] = c.dbType, c.v
		if i > 0 {
			want.WriteByte(',')
		}
		want.Write(marshal(t, cols[i]))
		want.WriteByte(':')
		want.Write(marshal(t, jsonValue(c.v, c.dbType)))
	}
	want.WriteByte('}')

	e := newRecordEncoder()
	keys, err := e.encodeKeys(cols)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the buffers are reused
		got, err := e.encode(cols, keys, types, vals)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("encode:\n got %s\nwant %s", got, want.Bytes())
		}
	}
}

// controls is every ASCII control character, and the characters JSON
// escapes.
func controls() string {
	var b strings.Builder
	for c := range 0x20 {
		b.WriteByte(byte(c))
	}
	b.WriteString(`"\/<>&'`)
	return b.String()
}

// The direct paths write each value as encoding/json does; where
// encoding/json fails (a float it cannot write), so does the encoder.
func TestValueMatchesEncodingJSON(t *testing.T) {
	for _, v := range []any{math.NaN(), math.Inf(1), math.Inf(-1)} {
		e := newRecordEncoder()
		if err := e.value(v); err == nil {
			t.Errorf("value(%v) = %s; want encoding/json's error", v, e.buf.Bytes())
		}
	}
	for _, v := range []any{"", "a\u2028b", "\xff", "\xed\xa0\x80", "\U0010FFFF", controls(), 1e21, 1e-7, -0.0, 100.0, uint64(1) << 63, []byte(nil)} {
		e := newRecordEncoder()
		if err := e.value(v); err != nil {
			t.Fatal(err)
		}
		if want := marshal(t, v); !bytes.Equal(e.buf.Bytes(), want) {
			t.Errorf("value(%#v) = %s; encoding/json writes %s", v, e.buf.Bytes(), want)
		}
	}
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// TestJSONNumber: jsonNumber accepts what JSON's number grammar does.
func TestJSONNumber(t *testing.T) {
	grammar := regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
	for _, s := range []string{"0", "-0", "1", "12.50", "-0.5", "1e10", "1E+10", "2.5e-3", "", "-", "01", "1.", ".5", "1e", "1e+",
		"NaN", "Infinity", "-Infinity", "1 ", " 1", "0x10", "1_000", "123456789012345678901234567890.000000001", "--1", "1.2.3", "1e5e5"} {
		if got, want := jsonNumber(s), grammar.MatchString(s); got != want {
			t.Errorf("jsonNumber(%q) = %v; want %v", s, got, want)
		}
	}
}

// appendJSONB writes what json.Compact writes for valid JSON, as
// PostgreSQL prints jsonb and otherwise; text that is not lexically JSON is
// refused (the encoder then has json.Compact check it).
func TestAppendJSONBMatchesCompact(t *testing.T) {
	for _, src := range []string{
		`[{"qty": 1, "sku": "SKU-000001", "price": 19.99}, {"qty": 1, "sku": "SKU-000331", "price": 4.5}]`,
		`{"a": "x y\tz", "b": [1, 2.5e-3, -0, true, false, null], "c": {"d": {}}, "e": []}`,
		` { "q" : "say \"hi\" \\ \/ \u00e9 \n" , "r":"\\" } `,
		"\t\r\n[\n  1,\n  \"Zoë 中 😀 \u2028 <a>&amp;\"\n]\n",
		`"just a string"`, `42`, `null`, `""`, `"\\\\"`, `"a\"b"`,
	} {
		var want bytes.Buffer
		if err := json.Compact(&want, []byte(src)); err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		got, ok := appendJSONB([]byte("prefix"), src)
		if !ok || string(got) != "prefix"+want.String() {
			t.Errorf("appendJSONB(%q) = %q, %v; want %q", src, got, ok, want.String())
		}
		if got, ok := appendJSONB(nil, []byte(src)); !ok || string(got) != want.String() {
			t.Errorf("appendJSONB([]byte %q) = %q, %v; want %q", src, got, ok, want.String())
		}
	}
	for _, src := range []string{"", "  \n", `"open`, `{"a": "b\`, "\"tab\tinside\"", "[\"new\nline\"]"} {
		if got, ok := appendJSONB([]byte("prefix"), src); ok || string(got) != "prefix" {
			t.Errorf("appendJSONB(%q) = %q, %v; want it refused, nothing written", src, got, ok)
		}
	}
}
