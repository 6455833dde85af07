package dsr_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDomainImportsNoStore checks that no file of the domain, its tests
// included, imports the MongoDB driver, internal/mongocompat or a store
// package: the store (store/mongostore) depends on the domain, never the
// other way round.
func TestDomainImportsNoStore(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no Go files found")
	}
	fset := token.NewFileSet()
	for _, name := range files {
		file, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(path, "go.mongodb.org/") ||
				strings.HasSuffix(path, "/internal/mongocompat") ||
				strings.Contains(path, "/dsar/store/") {
				t.Errorf("%s imports %s: the domain stays free of the store (MongoDB code goes in store/mongostore)", name, path)
			}
		}
	}
}
