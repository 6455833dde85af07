package sqldb

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEraseOrderGraph checks the order of deletion on foreign-key graphs:
// children first, through tables the file does not name, self-references
// ignored, file order kept otherwise, a cycle an error only where a table
// in it deletes.
func TestEraseOrderGraph(t *testing.T) {
	t.Parallel()
	edges := func(pairs ...string) map[string][]string {
		out := map[string][]string{}
		for _, p := range pairs {
			child, parent, _ := strings.Cut(p, ">")
			out[node("s", child)] = append(out[node("s", child)], node("s", parent))
		}
		return out
	}
	tests := []struct {
		name    string
		parents map[string][]string
		tables  []string
		deletes bool
		want    []string
		wantErr string
	}{
		{"no keys: file order", edges(), []string{"a", "b", "c"}, true, []string{"a", "b", "c"}, ""},
		{"parent listed first", edges("orders>customers"), []string{"customers", "orders"}, true, []string{"orders", "customers"}, ""},
		{"chain", edges("lines>invoices", "invoices>customers"), []string{"customers", "invoices", "lines"}, true, []string{"lines", "invoices", "customers"}, ""},
		{"through a table not named", edges("lines>invoices", "invoices>customers"), []string{"customers", "lines"}, true, []string{"lines", "customers"}, ""},
		{"self-reference", edges("staff>staff", "staff>teams"), []string{"teams", "staff"}, true, []string{"staff", "teams"}, ""},
		{"unrelated keep their place", edges("b>a"), []string{"a", "x", "b", "y"}, true, []string{"x", "b", "a", "y"}, ""},
		{"cycle, deleting", edges("a>b", "b>a"), []string{"a", "b", "c"}, true, nil, "tables a, b reference each other in a cycle"},
		{"cycle, masking", edges("a>b", "b>a", "c>a"), []string{"a", "b", "c"}, false, []string{"c", "a", "b"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &liveSchema{name: "s", parents: tt.parents}
			order, err := s.eraseOrder(tt.tables, func(int) bool { return tt.deletes })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("eraseOrder: %v; want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, i := range order {
				got = append(got, tt.tables[i])
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
		})
	}
}
