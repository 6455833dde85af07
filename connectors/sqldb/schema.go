package sqldb

import (
	"fmt"
	"sort"
	"strings"

	"github.com/dsar-project/dsar/connectors"
)

// class is what the connector needs to know of a column's type.
type class int

const (
	classOther class = iota
	classText        // char, varchar, text: matched, masked by every strategy
	classInt         // integers: matched by an id in canonical decimal form
	classUUID        // PostgreSQL uuid: matched by an id that parses as one
	classBool
	classNumber // decimal, float
)

// column is one column of the live schema.
type column struct {
	name     string
	dataType string // as the server names it, for messages
	class    class
	nullable bool
	// maxLen is the most characters a text column holds; 0 when unbounded.
	maxLen int64
	// charset is a MySQL text column's character set; noNUL says a text
	// column cannot hold a NUL (PostgreSQL).
	charset string
	noNUL   bool
	// intBits is the size of a PostgreSQL integer (16, 32, 64); unsigned
	// says a MySQL integer is.
	intBits  int
	unsigned bool
}

// table is one table of the live schema.
type table struct {
	name    string
	columns map[string]*column
	pk      []string // primary key columns, in key order
}

// liveSchema is what the connector read of the database when it was built.
type liveSchema struct {
	name   string
	tables map[string]*table
	// parents maps a table, as node(schema, table), to the tables its
	// foreign keys reference (self-references left out).
	parents map[string][]string
}

// node names a table in the foreign-key graph, across schemas.
func node(schema, table string) string { return schema + "\x00" + table }

// suggest returns ` (did you mean "X"?)` when a name of have differs from
// name only in case, else "".
func suggest(name string, have []string) string {
	for _, h := range have {
		if strings.EqualFold(h, name) {
			return fmt.Sprintf(" (did you mean %q?)", h)
		}
	}
	return ""
}

func (t *table) columnNames() []string {
	return connectors.SortedKeys(t.columns)
}

// eraseOrder returns the indexes of tables (configured table names, in file
// order) so that a table comes before every table it references through
// foreign keys, directly or through tables not configured: a child's rows
// are deleted before its parent's. Tables unrelated keep their file order.
// A cycle among configured tables is an error naming them when one of them
// deletes rows (deletes(i)); tables in a cycle that only update keep their
// file order among themselves.
func (s *liveSchema) eraseOrder(tables []string, deletes func(i int) bool) ([]int, error) {
	// reach[i] holds the nodes table i references, transitively.
	reach := make([]map[string]bool, len(tables))
	for i, name := range tables {
		seen := map[string]bool{}
		stack := []string{node(s.name, name)}
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, p := range s.parents[n] {
				if !seen[p] {
					seen[p] = true
					stack = append(stack, p)
				}
			}
		}
		reach[i] = seen
	}
	// i must come before j when i references j.
	before := func(i, j int) bool { return i != j && reach[i][node(s.name, tables[j])] }
	done := make([]bool, len(tables))
	var order []int
	for len(order) < len(tables) {
		next := -1
		for j := range tables {
			if done[j] {
				continue
			}
			ready := true
			for i := range tables {
				if !done[i] && before(i, j) {
					ready = false
					break
				}
			}
			if ready {
				next = j
				break // the first ready in file order
			}
		}
		if next < 0 {
			// Every table left waits on another: some are in a cycle.
			var cycle []string
			deleting := false
			for i := range tables {
				if done[i] {
					continue
				}
				for k := range tables {
					if !done[k] && before(i, k) && before(k, i) {
						cycle = append(cycle, tables[i])
						deleting = deleting || deletes(i)
						if next < 0 {
							next = i
						}
						break
					}
				}
			}
			if deleting {
				sort.Strings(cycle)
				return nil, fmt.Errorf("the foreign keys of tables %s reference each other in a cycle, so no order deletes children before their parents; erase them with mask instead of delete, or leave one out", strings.Join(cycle, ", "))
			}
		}
		done[next] = true
		order = append(order, next)
	}
	return order, nil
}
