package sqldb

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/dsar-project/dsar/dsr"
)

// jsonNumber reports whether s is a number as JSON writes one: what a
// number must look like to be written as a JSON number.
func jsonNumber[T string | []byte](s T) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - start
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// binaryTypes are the column types (as database/sql's DatabaseTypeName
// reports them) whose values are bytes, never text.
var binaryTypes = map[string]bool{
	"BYTEA": true, "BLOB": true, "TINYBLOB": true, "MEDIUMBLOB": true, "LONGBLOB": true,
	"BINARY": true, "VARBINARY": true, "BIT": true, "GEOMETRY": true,
}

// jsonValue returns v, as database/sql scanned it from a column the server
// types as dbType, as a value encoding/json writes without loss: times in
// RFC 3339 (dates alone as YYYY-MM-DD), decimals as JSON numbers with every
// digit (json.Number), floats that JSON cannot write (NaN, infinities) as
// text, JSON columns as they are, bytes as base64 (or as text, for a text
// column a driver hands over as bytes).
func jsonValue(v any, dbType string) any {
	switch x := v.(type) {
	case nil, bool, int64, uint64, int32, int:
		return x
	case string:
		return textString(x, dbType)
	case []byte:
		if binaryTypes[dbType] {
			return x // encoding/json writes base64
		}
		return textBytes(x, dbType)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
		return x
	case float32:
		return jsonValue(float64(x), dbType)
	case time.Time:
		if dbType == "DATE" {
			return x.Format(time.DateOnly)
		}
		return x.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// textString renders a value the driver gave as a string by its column
// type: JSON as it is, decimals as JSON numbers, text that is not UTF-8 as
// bytes (base64), other text as text.
func textString(s, dbType string) any {
	switch dbType {
	case "JSON", "JSONB":
		if b := []byte(s); json.Valid(b) {
			return json.RawMessage(b)
		}
	case "NUMERIC", "DECIMAL", "BIGINT", "UNSIGNED BIGINT":
		if jsonNumber(s) {
			return json.Number(s)
		}
	}
	if !utf8.ValidString(s) {
		return []byte(s) // base64
	}
	return s
}

// textBytes is textString for a value the driver gave as bytes.
func textBytes(b []byte, dbType string) any {
	switch dbType {
	case "JSON", "JSONB":
		if json.Valid(b) {
			return json.RawMessage(b)
		}
	case "NUMERIC", "DECIMAL", "BIGINT", "UNSIGNED BIGINT":
		if s := string(b); jsonNumber(s) {
			return json.Number(s)
		}
	}
	if !utf8.Valid(b) {
		return b // base64
	}
	return string(b)
}

// recordEncoder writes rows as JSON objects with the columns in the
// table's order, reusing one buffer.
type recordEncoder struct {
	buf bytes.Buffer
	tmp bytes.Buffer
	enc *json.Encoder
}

func newRecordEncoder() *recordEncoder {
	e := &recordEncoder{}
	e.enc = json.NewEncoder(&e.tmp)
	e.enc.SetEscapeHTML(false)
	return e
}

// encode returns the record of one row, compact JSON it wrote itself (a
// dsr.CompactJSON: export writers store it as it is); it is valid until
// the next call. keys are the columns' names, encoded (see encodeKeys).
func (e *recordEncoder) encode(cols, keys, types []string, vals []any) (dsr.CompactJSON, error) {
	e.buf.Reset()
	e.buf.WriteByte('{')
	for i, c := range cols {
		if i > 0 {
			e.buf.WriteByte(',')
		}
		e.buf.WriteString(keys[i])
		e.buf.WriteByte(':')
		if err := e.column(vals[i], types[i]); err != nil {
			return nil, fmt.Errorf("column %s: %w", c, err)
		}
	}
	e.buf.WriteByte('}')
	return e.buf.Bytes(), nil
}

// column writes v, as database/sql scanned it from a column of dbType, as
// e.value(jsonValue(v, dbType)) writes it, with less copying for what rows
// hold most: a time is formatted in place, and JSON text is compacted in
// one pass, which checks it too (text that is not JSON is then written as
// jsonValue has it).
func (e *recordEncoder) column(v any, dbType string) error {
	switch x := v.(type) {
	case time.Time:
		layout := time.RFC3339Nano
		if dbType == "DATE" {
			layout = time.DateOnly
		}
		// Digits, signs, 'T', 'Z', ':' and '.': nothing JSON escapes.
		b := append(e.buf.AvailableBuffer(), '"')
		b = x.AppendFormat(b, layout)
		e.buf.Write(append(b, '"'))
		return nil
	case []byte:
		if binaryTypes[dbType] {
			break
		}
		switch dbType {
		case "JSONB":
			if b, ok := appendJSONB(e.buf.AvailableBuffer(), x); ok {
				e.buf.Write(b)
				return nil
			}
			if json.Compact(&e.buf, x) == nil {
				return nil
			}
		case "JSON":
			if json.Compact(&e.buf, x) == nil { // writes nothing on error
				return nil
			}
		case "NUMERIC", "DECIMAL", "BIGINT", "UNSIGNED BIGINT":
			if jsonNumber(x) {
				e.buf.Write(x)
				return nil
			}
		}
		if utf8.Valid(x) {
			e.buf.Write(appendString(e.buf.AvailableBuffer(), x))
			return nil
		}
	case string: // as textString has it, without boxing it again
		switch dbType {
		case "JSONB":
			if b, ok := appendJSONB(e.buf.AvailableBuffer(), x); ok {
				e.buf.Write(b)
				return nil
			}
			if json.Compact(&e.buf, []byte(x)) == nil {
				return nil
			}
		case "JSON":
			if json.Compact(&e.buf, []byte(x)) == nil {
				return nil
			}
		case "NUMERIC", "DECIMAL", "BIGINT", "UNSIGNED BIGINT":
			if jsonNumber(x) {
				e.buf.WriteString(x)
				return nil
			}
		}
		if utf8.ValidString(x) {
			e.buf.Write(appendString(e.buf.AvailableBuffer(), x))
			return nil
		}
	}
	return e.value(jsonValue(v, dbType))
}

// encodeKeys returns the names of cols as JSON strings.
func (e *recordEncoder) encodeKeys(cols []string) ([]string, error) {
	keys := make([]string, len(cols))
	for i, c := range cols {
		e.buf.Reset()
		if err := e.value(c); err != nil {
			return nil, err
		}
		keys[i] = e.buf.String()
	}
	return keys, nil
}

// value writes v as encoding/json (without HTML escaping) writes it,
// compact; the values rows hold (null, booleans, integers, floats, text,
// numbers, JSON, bytes) are written directly, the same bytes, without
// reflection.
func (e *recordEncoder) value(v any) error {
	switch x := v.(type) {
	case nil:
		e.buf.WriteString("null")
		return nil
	case bool:
		e.buf.Write(strconv.AppendBool(e.buf.AvailableBuffer(), x))
		return nil
	case int64:
		e.buf.Write(strconv.AppendInt(e.buf.AvailableBuffer(), x, 10))
		return nil
	case int32:
		e.buf.Write(strconv.AppendInt(e.buf.AvailableBuffer(), int64(x), 10))
		return nil
	case int:
		e.buf.Write(strconv.AppendInt(e.buf.AvailableBuffer(), int64(x), 10))
		return nil
	case uint64:
		e.buf.Write(strconv.AppendUint(e.buf.AvailableBuffer(), x, 10))
		return nil
	case float64:
		if !math.IsNaN(x) && !math.IsInf(x, 0) { // encoding/json's error for those
			e.buf.Write(appendFloat(e.buf.AvailableBuffer(), x))
			return nil
		}
	case string:
		e.buf.Write(appendString(e.buf.AvailableBuffer(), x))
		return nil
	case []byte:
		if x == nil {
			e.buf.WriteString("null")
			return nil
		}
		b := e.buf.AvailableBuffer()
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, x)
		e.buf.Write(append(b, '"'))
		return nil
	case json.Number:
		e.buf.WriteString(string(x)) // jsonNumber checked it
		return nil
	case json.RawMessage:
		if json.Compact(&e.buf, x) == nil { // as encoding/json writes it
			return nil
		}
	}
	e.tmp.Reset()
	if err := e.enc.Encode(v); err != nil {
		return err
	}
	e.buf.Write(bytes.TrimSuffix(e.tmp.Bytes(), []byte("\n")))
	return nil
}

// appendFloat appends f, a finite float64, as encoding/json writes it:
// the shortest decimal that reads back as f, in exponent form below 1e-6
// or from 1e21 on, with a one-digit negative exponent unpadded (1e-7).
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONB appends src, the text of a PostgreSQL jsonb value, compacted:
// the white space outside its strings dropped, what json.Compact writes
// for it. It does not check the JSON's grammar: jsonb is JSON the server
// parsed when it was stored, and prints valid (jsonb_out), which is why
// only the JSONB type comes here (a json or MySQL JSON column goes through
// json.Compact, which checks it). It returns false, having checked that
// much, for text that is not even lexically JSON text: empty, a string
// left open, or a control character inside one.
func appendJSONB[T string | []byte](b []byte, src T) ([]byte, bool) {
	start := len(b)
	for i := 0; i < len(src); i++ {
		switch c := src[i]; c {
		case ' ', '\t', '\n', '\r':
		case '"':
			j := i + 1
			for ; j < len(src); j++ {
				if c := src[j]; c == '"' {
					break
				} else if c == '\\' {
					j++
				} else if c < 0x20 {
					return b[:start], false
				}
			}
			if j >= len(src) {
				return b[:start], false
			}
			b = append(b, src[i:j+1]...)
			i = j
		default:
			b = append(b, c)
		}
	}
	return b, len(b) > start
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string as encoding/json writes it
// without HTML escaping: '"' and '\\' escaped, control characters as \b,
// \f, \n, \r, \t or \u00XX, U+2028 and U+2029 as \u2028 and \u2029, bytes
// that are not UTF-8 as \ufffd, everything else as it is.
func appendString[T string | []byte](b []byte, s T) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		var rb [utf8.UTFMax]byte
		r, size := utf8.DecodeRune(rb[:copy(rb[:], s[i:])])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
