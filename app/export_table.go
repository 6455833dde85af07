package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
	p := &jsonScan{data: data}
	p.space()
	if p.i < len(p.data) && p.data[p.i] == '{' && !p.extended() && !p.emptyObject() {
		if err := p.object("", fn); err != nil {
			return err
		}
	} else {
		v, err := p.cell()
		if err != nil {
			return err
		}
		fn("value", v)
	}
	p.space()
	if p.i != len(p.data) {
		return p.fail("text after the record")
	}
	return nil
}

// jsonScan reads a JSON text (a record as the store keeps it) in one pass,
// without decoding it into maps: a hand-written reader, since
// encoding/json's Decoder, which keeps keys in order too, costs several
// times more per record.
type jsonScan struct {
	data []byte
	i    int
}

func (p *jsonScan) fail(what string) error {
	return fmt.Errorf("render record: %s at byte %d", what, p.i)
}

func (p *jsonScan) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// object reads an object whose fields are flattened under prefix.
func (p *jsonScan) object(prefix string, fn func(key, value string)) error {
	p.i++ // {
	p.space()
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.i++
		return nil
	}
	for {
		p.space()
		key, err := p.str()
		if err != nil {
			return err
		}
		p.space()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return p.fail("no colon after a key")
		}
		p.i++
		p.space()
		if p.i < len(p.data) && p.data[p.i] == '{' && !p.extended() && !p.emptyObject() {
			if err := p.object(prefix+key+".", fn); err != nil {
				return err
			}
		} else {
			v, err := p.cell()
			if err != nil {
				return err
			}
			fn(prefix+key, v)
		}
		p.space()
		if p.i >= len(p.data) {
			return p.fail("unterminated object")
		}
		switch p.data[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.fail("no comma or brace after a value")
		}
	}
}

// extended reports whether the object at p.i is an Extended JSON value:
// its first key starts with $.
func (p *jsonScan) extended() bool {
	q := jsonScan{data: p.data, i: p.i + 1}
	q.space()
	return q.i+1 < len(q.data) && q.data[q.i] == '"' && q.data[q.i+1] == '$'
}

// emptyObject reports whether the object at p.i is {}.
func (p *jsonScan) emptyObject() bool {
	q := jsonScan{data: p.data, i: p.i + 1}
	q.space()
	return q.i < len(q.data) && q.data[q.i] == '}'
}

// str reads a string.
func (p *jsonScan) str() (string, error) {
	if p.i >= len(p.data) || p.data[p.i] != '"' {
		return "", p.fail("no string")
	}
	start, escaped := p.i, false
	for p.i++; p.i < len(p.data); p.i++ {
		switch p.data[p.i] {
		case '\\':
			escaped = true
			p.i++
		case '"':
			p.i++
			raw := p.data[start:p.i]
			if !escaped {
				return string(raw[1 : len(raw)-1]), nil
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", fmt.Errorf("render record: %w", err)
			}
			return s, nil
		}
	}
	return "", p.fail("unterminated string")
}

// skip reads past one value and returns its text.
func (p *jsonScan) skip() ([]byte, error) {
	start := p.i
	if p.i >= len(p.data) {
		return nil, p.fail("no value")
	}
	switch p.data[p.i] {
	case '"':
		if _, err := p.str(); err != nil {
			return nil, err
		}
	case '{', '[':
		depth := 0
		for p.i < len(p.data) {
			switch p.data[p.i] {
			case '"':
				if _, err := p.str(); err != nil {
					return nil, err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			p.i++
			if depth == 0 {
				return p.data[start:p.i], nil
			}
		}
		return nil, p.fail("unterminated value")
	default: // a number, true, false or null
		for p.i < len(p.data) && !strings.ContainsRune(",}] \t\r\n", rune(p.data[p.i])) {
			p.i++
		}
		if p.i == start {
			return nil, p.fail("no value")
		}
	}
	return p.data[start:p.i], nil
}

// cell reads one value and returns its cell's text (see flatten).
func (p *jsonScan) cell() (string, error) {
	if p.i >= len(p.data) {
		return "", p.fail("no value")
	}
	switch c := p.data[p.i]; c {
	case '"':
		return p.str()
	case '{', '[':
		ext := c == '{' && p.extended()
		raw, err := p.skip()
		if err != nil {
			return "", err
		}
		if ext {
			if v, ok := extendedScalar(raw); ok {
				return v, nil
			}
		}
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return "", fmt.Errorf("render record: %w", err)
		}
		return b.String(), nil
	default:
		raw, err := p.skip()
		if err != nil {
			return "", err
		}
		if string(raw) == "null" {
			return "", nil
		}
		return string(raw), nil
	}
}

// extendedScalar returns the value of an Extended JSON object of one key
// whose value is a scalar: {"$oid": "5f..."} is "5f...".
func extendedScalar(raw []byte) (string, bool) {
	p := &jsonScan{data: raw, i: 1}
	p.space()
	if _, err := p.str(); err != nil {
		return "", false
	}
	p.space()
	if p.i >= len(p.data) || p.data[p.i] != ':' {
		return "", false
	}
	p.i++
	p.space()
	if p.i >= len(p.data) || p.data[p.i] == '{' || p.data[p.i] == '[' {
		return "", false
	}
	v, err := p.cell()
	if err != nil {
		return "", false
	}
	p.space()
	if p.i != len(p.data)-1 || p.data[p.i] != '}' {
		return "", false // more than one key
	}
	return v, true
}
