package manual_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors/manual"
)

func TestParseUpload(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, text string
		limit            int64
		max              int
		want             []string
		wantErr          string
	}{
		{name: "JSON array", file: "export.json", text: "[\n {\"page\": 1, \"note\": \"a\"},\n {\"page\": 2}\n]\n",
			want: []string{`{"page":1,"note":"a"}`, `{"page":2}`}},
		{name: "NDJSON", file: "export.ndjson", text: "{\"page\": 1}\n\n{\"page\": 2}\n", want: []string{`{"page":1}`, `{"page":2}`}},
		{name: "CSV keeps its column order", file: "export.csv", text: "\xef\xbb\xbfname,page\nAda,1\n\"Lovelace, A.\",2\n",
			want: []string{`{"name":"Ada","page":"1"}`, `{"name":"Lovelace, A.","page":"2"}`}},
		{name: "CSV formulas stay text", file: "export.csv", text: "note,link\n=1+1,\"=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\"\n@SUM(A1),+cmd|' /C calc'!A0\n",
			want: []string{`{"note":"=1+1","link":"=HYPERLINK(\"http://evil.example\",\"x\")"}`, `{"note":"@SUM(A1)","link":"+cmd|' /C calc'!A0"}`}},
		{name: "sniffed JSON", file: "export", text: `[{"a":1}]`, want: []string{`{"a":1}`}},
		{name: "sniffed CSV", file: "", text: "a\n1\n", want: []string{`{"a":"1"}`}},
		{name: "HTML kept as data", file: "x.json", text: `[{"note":"<script>alert(1)</script>"}]`, want: []string{`{"note":"<script>alert(1)</script>"}`}},
		{name: "JSON syntax error", file: "export.json", text: "[\n {\"page\": 1},\n {\"page\": 2,}\n]", wantErr: "line 3: not valid JSON"},
		{name: "JSON cut short", file: "export.json", text: "[\n {\"page\": 1},\n", wantErr: "line 2: not valid JSON: unexpected end of JSON input"},
		{name: "JSON record not an object", file: "export.json", text: "[\n {\"page\": 1},\n 2\n]", wantErr: "line 3: each record must be a JSON object"},
		{name: "JSON text after", file: "export.json", text: "[]\n{}", wantErr: "line 2: not valid JSON: invalid character '{' after top-level value"},
		{name: "NDJSON error", file: "export.jsonl", text: "{\"a\":1}\n{\"a\":\n", wantErr: "line 2: not valid JSON"},
		{name: "CSV row of another width", file: "export.csv", text: "a,b\n1,2\n3\n", wantErr: "line 3: not valid CSV: this row has a different number of columns"},
		{name: "CSV bare quote", file: "export.csv", text: "a,b\n1,2\n3,x\"y\n", wantErr: "line 3: not valid CSV"},
		{name: "CSV column without a name", file: "export.csv", text: "a,,c\n1,2,3\n", wantErr: "line 1: column 2 has no name"},
		{name: "CSV column twice", file: "export.csv", text: "a,a\n1,2\n", wantErr: `line 1: column "a" is named twice`},
		{name: "too large", file: "export.csv", text: "a\n" + strings.Repeat("1\n", 100), limit: 50, wantErr: "too large"},
		{name: "too many records", file: "export.csv", text: "a\n1\n2\n3\n", max: 2, wantErr: "line 4: more than 2 records"},
		{name: "too many JSON records", file: "export.json", text: "[{},\n{},\n{}]", max: 2, wantErr: "line 3: more than 2 records"},
		{name: "not UTF-8", file: "export.csv", text: "a\n\xff\xfe\n", wantErr: "line 2: the file is not UTF-8"},
		{name: "empty", file: "export.csv", text: " \n", wantErr: "the file is empty"},
		{name: "header only", file: "export.csv", text: "a,b\n", wantErr: "no records"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			limit, max := tt.limit, tt.max
			if limit == 0 {
				limit = 1 << 20
			}
			if max == 0 {
				max = 100
			}
			recs, err := manual.ParseUpload(strings.NewReader(tt.text), tt.file, limit, max)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
				}
				var ue *manual.UploadError
				if !errors.As(err, &ue) && !errors.Is(err, manual.ErrTooLarge) {
					t.Errorf("err %T, want an *UploadError or ErrTooLarge", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, string(r))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
		})
	}
}
