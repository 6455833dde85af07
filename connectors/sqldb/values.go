package sqldb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"
)

// jsonNumber is what a number must look like to be written as a JSON
// number.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

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
	case nil, bool, int64, uint64, int32, int, string:
		if s, ok := x.(string); ok {
			return textValue([]byte(s), s, dbType)
		}
		return x
	case []byte:
		if binaryTypes[dbType] {
			return x // encoding/json writes base64
		}
		return textValue(x, "", dbType)
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

// textValue renders a value the driver gave as text (s, or b when s is
// empty) by its column type.
func textValue(b []byte, s, dbType string) any {
	if s == "" {
		s = string(b)
	}
	switch dbType {
	case "JSON", "JSONB":
		if json.Valid(b) {
			return json.RawMessage(b)
		}
	case "NUMERIC", "DECIMAL", "BIGINT", "UNSIGNED BIGINT":
		if jsonNumber.MatchString(s) {
			return json.Number(s)
		}
	}
	if !utf8.ValidString(s) {
		return b // base64
	}
	return s
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

// encode returns the record of one row; it is valid until the next call.
func (e *recordEncoder) encode(cols, types []string, vals []any) (json.RawMessage, error) {
	e.buf.Reset()
	e.buf.WriteByte('{')
	for i, c := range cols {
		if i > 0 {
			e.buf.WriteByte(',')
		}
		if err := e.value(c); err != nil {
			return nil, err
		}
		e.buf.WriteByte(':')
		if err := e.value(jsonValue(vals[i], types[i])); err != nil {
			return nil, fmt.Errorf("column %s: %w", c, err)
		}
	}
	e.buf.WriteByte('}')
	return e.buf.Bytes(), nil
}

func (e *recordEncoder) value(v any) error {
	e.tmp.Reset()
	if err := e.enc.Encode(v); err != nil {
		return err
	}
	e.buf.Write(bytes.TrimSuffix(e.tmp.Bytes(), []byte("\n")))
	return nil
}
