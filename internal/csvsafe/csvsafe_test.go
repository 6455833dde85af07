package csvsafe_test

import (
	"testing"

	"github.com/dsar-project/dsar/internal/csvsafe"
)

func TestCell(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"=1+1": "'=1+1", "+44": "'+44", "-1+1": "'-1+1", "@SUM(A1)": "'@SUM(A1)", "\tx": "'\tx", "\rx": "'\rx",
		"=HYPERLINK(\"http://evil\")": "'=HYPERLINK(\"http://evil\")",
		"-42.5":                       "-42.5", "-1e5": "-1e5", "12": "12", "a=b": "a=b", "": "", "'=x": "'=x", "-": "'-",
	} {
		if got := csvsafe.Cell(in); got != want {
			t.Errorf("Cell(%q) = %q; want %q", in, got, want)
		}
	}
	if got := csvsafe.Row(nil, []string{"=a", "b"}); len(got) != 2 || got[0] != "'=a" || got[1] != "b" {
		t.Errorf("Row = %q", got)
	}
}
