package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// The CSV files and the tables of index.html show each record of a
// collection as a row: a record's fields are flattened (a nested object's
// fields become dotted columns, "address.city"; an array is one cell
// holding its JSON text; an Extended JSON value such as {"$oid": "..."} or
// {"$date": "..."} is the one cell of its value), and a collection's
// columns are the union of its records' flattened fields, in the order
// first seen, learnt in a first pass over the records (the JSON files'
// pass) so that no record is held.
//
// A collection has at most maxColumns columns: a field first seen when it
// has them all, and a field whose column a record fills twice ("a.b" and
// {"a": {"b": ...}}), goes to one last column, otherColumn, which holds a
// JSON object of such fields and their values. Nothing is dropped.

// maxColumns bounds the columns of one collection's table.
const maxColumns = 100

// otherColumn is the last column of a collection whose fields do not all
// fit in maxColumns columns: a JSON object of the fields that did not.
const otherColumn = "_other"

// columns are one collection's columns, and the row of the record read
// last.
type columns struct {
	names []string
	index map[string]int
	// other says the collection needs otherColumn.
	other bool

	// What flattening the last record gave: its cells by column (filled
	// says which it has), and the fields for otherColumn, key then value.
	filled []bool
	cells  []string
	extra  []string
}

func newColumns() *columns { return &columns{index: map[string]int{}} }

// learn adds the fields of record data to the columns.
func (c *columns) learn(data []byte) error {
	return c.read(data, true)
}

// header returns the CSV and table header: the columns, then otherColumn
// when the collection needs it.
func (c *columns) header() []string {
	h := append([]string(nil), c.names...)
	if c.other {
		h = append(h, otherColumn)
	}
	return h
}

// row returns the cells of record data under the columns learnt, the slice
// reused by the next call. A record with a field the first pass did not see
// is an error: the records changed between the passes.
func (c *columns) row(data []byte) ([]string, error) {
	if err := c.read(data, false); err != nil {
		return nil, err
	}
	row := c.cells[:len(c.names)]
	for i := range row {
		if !c.filled[i] {
			row[i] = ""
		}
	}
	if !c.other {
		if len(c.extra) > 0 {
			return nil, errors.New("render record: a field not seen in the first pass")
		}
		return row, nil
	}
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(c.extra); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(c.extra[i])
		v, _ := json.Marshal(c.extra[i+1])
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	other := ""
	if len(c.extra) > 0 {
		other = b.String()
	}
	return append(row, other), nil
}

// read flattens record data into the cells, adding columns when grow is
// set and the collection has fewer than maxColumns.
func (c *columns) read(data []byte, grow bool) error {
	for len(c.filled) < len(c.names)+1 {
		c.filled = append(c.filled, false)
		c.cells = append(c.cells, "")
	}
	clear(c.filled)
	c.extra = c.extra[:0]
	return flatten(data, func(key, value string) {
		i, ok := c.index[key]
		if !ok && grow && key != otherColumn && len(c.names) < maxColumns {
			i, ok = len(c.names), true
			c.index[key] = i
			c.names = append(c.names, key)
			c.filled = append(c.filled, false)
			c.cells = append(c.cells, "")
		}
		if !ok || c.filled[i] {
			c.extra = append(c.extra, key, value)
			if grow {
				c.other = true
			}
			return
		}
		c.filled[i], c.cells[i] = true, value
	})
}

// flatten calls fn with each flattened field of the JSON record data and
// its cell's text: a string as it is, a number, true or false as written,
// null as "", an array as its JSON text, an Extended JSON value of one
// scalar ({"$oid": "..."}) as that scalar and any other ({"$binary":
// {...}}) as its JSON text, and an object's fields under "key." (an empty
// object is "{}"). A record that is not an object is one field, "value".
func flatten(data []byte, fn func(key, value string)) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		v, err := cell(data)
		if err != nil {
			return err
		}
		fn("value", v)
		return nil
	}
	return flattenObject(data, "", fn)
}

func flattenObject(data []byte, prefix string, fn func(key, value string)) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // {
		return fmt.Errorf("render record: %w", err)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("render record: %w", err)
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("render record: %w", err)
		}
		if raw[0] == '{' && !extendedJSON(raw) && !emptyObject(raw) {
			if err := flattenObject(raw, prefix+key+".", fn); err != nil {
				return err
			}
			continue
		}
		v, err := cell(raw)
		if err != nil {
			return err
		}
		fn(prefix+key, v)
	}
	return nil
}

var (
	extendedKey = regexp.MustCompile(`^\{\s*"\$`)
	emptyObj    = regexp.MustCompile(`^\{\s*\}$`)
)

// extendedJSON reports whether an object is an Extended JSON value: its
// first key starts with $.
func extendedJSON(raw []byte) bool { return extendedKey.Match(raw) }

func emptyObject(raw []byte) bool { return emptyObj.Match(raw) }

// cell is the text of one JSON value in a cell (see flatten).
func cell(raw []byte) (string, error) {
	if len(raw) == 0 {
		return "", errors.New("render record: empty value")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("render record: %w", err)
		}
		return s, nil
	case 'n':
		return "", nil
	case '{':
		if v, ok := extendedScalar(raw); ok {
			return v, nil
		}
		fallthrough
	case '[':
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return "", fmt.Errorf("render record: %w", err)
		}
		return b.String(), nil
	default: // a number, true or false
		return string(raw), nil
	}
}

// extendedScalar returns the value of an Extended JSON object of one key
// whose value is a scalar: {"$oid": "5f..."} is "5f...".
func extendedScalar(raw []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil || len(m) != 1 {
		return "", false
	}
	for k, v := range m {
		if !strings.HasPrefix(k, "$") || len(v) == 0 || v[0] == '{' || v[0] == '[' {
			return "", false
		}
		s, err := cell(v)
		return s, err == nil
	}
	return "", false
}
