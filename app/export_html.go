package app

import (
	"bufio"
	"fmt"
	"html/template"
	"strings"
	"time"
)

// maxHTMLRows bounds the rows of one collection's table in index.html: a
// page of a hundred thousand rows is more than a browser shows readably.
// The collection's CSV and JSON files, linked beside the table, hold every
// record.
const maxHTMLRows = 1000

// pageHead is what the top of index.html shows.
type pageHead struct {
	Request     manifestRequest
	GeneratedAt time.Time
	Records     int64
	Systems     []systemSummary
	Rights      string
}

// tableHead is what the top of a collection's table shows.
type tableHead struct {
	Collection manifestCollection
	Header     []string
}

// tableEnd is what the end of a collection's table shows.
type tableEnd struct {
	Collection manifestCollection
	// Shown of Read records are in the table.
	Shown, Read int64
}

// page is index.html, written in parts so that records stream through
// it: head, then per system "system", per collection "table", a row per
// record (up to maxHTMLRows, see writeRow) and "tableEnd", then
// "systemEnd"; and "foot". html/template escapes every value; the page has
// no script, and its Content-Security-Policy forbids any (a record's
// "<script>" is text).
var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"join": func(s []string) string { return strings.Join(s, ", ") },
	"records": func(n int64) string {
		if n == 1 {
			return "1 record"
		}
		return fmt.Sprintf("%d records", n)
	},
	"date": func(t time.Time) string { return t.UTC().Format("2 January 2006, 15:04 UTC") },
	"anchor": func(name string) string {
		return "system-" + unsafePathChars.ReplaceAllString(name, "_")
	},
}).Parse(`
{{- define "head" -}}
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="referrer" content="no-referrer">
<title>Your personal data: request {{.Request.ID}}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;padding:1.5em;max-width:80em;color:#1b1b1b}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:2px solid #ccc;padding-bottom:.2em}h3{margin-top:1.5em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f2f2f2}td{white-space:pre-wrap;word-break:break-word}.info th{width:12em}.scroll{overflow-x:auto}
.note{color:#555}nav li{margin:.2em 0}
</style>
</head>
<body>
<h1>Your personal data</h1>
<p>This is the copy of your personal data you asked for (request <code>{{.Request.ID}}</code>, received {{date .Request.ReceivedAt}}
{{- with .Request.ClosedAt}}, completed {{date .}}{{end}}). It was prepared on {{date .GeneratedAt}}.
It holds {{records .Records}} from {{len .Systems}} {{if eq (len .Systems) 1}}system{{else}}systems{{end}}. Each system below says why it holds your data, what kinds of data,
who receives it, how long it is kept, where it came from and on what legal basis, as far as it declares them; the tables show the records.</p>
<p>The same records are in this package as CSV files (for a spreadsheet) and JSON files (for a program); summary.json holds this page's information in a form a program reads.</p>
<p>{{.Rights}}</p>
<nav><h2>Systems</h2><ul>
{{- range .Systems}}
<li><a href="#{{anchor .Name}}">{{.Name}}</a>: {{records .Records}}</li>
{{- else}}
<li>No system holds data on you.</li>
{{- end}}
</ul></nav>
{{end}}

{{- define "system"}}
<section id="{{anchor .Name}}">
<h2>{{.Name}}</h2>
<table class="info">
<tr><th>Purpose</th><td>{{or .Purpose "not declared"}}</td></tr>
<tr><th>Categories of data</th><td>{{if .Categories}}{{join .Categories}}{{else}}not declared{{end}}</td></tr>
<tr><th>Recipients</th><td>{{if .Recipients}}{{join .Recipients}}{{else}}not declared{{end}}</td></tr>
<tr><th>Retention</th><td>{{or .Retention "not declared"}}</td></tr>
<tr><th>Source</th><td>{{or .Source "not declared"}}</td></tr>
<tr><th>Legal basis</th><td>{{if .LegalBasis}}{{.LegalBasis}} ({{.LegalBasisArticle}}){{else}}not declared{{end}}</td></tr>
</table>
<table>
<tr><th>Collection</th><th>Records</th><th>Files</th></tr>
{{- range .Collections}}
<tr><td>{{.Name}}</td><td>{{.Records}}{{with .NotSearched}} (not searched: {{.}}){{end}}</td><td>
{{- if .File}}<a href="{{.File}}">JSON</a>{{end}}{{if .CSV}}, <a href="{{.CSV}}">CSV</a>{{end}}</td></tr>
{{- end}}
</table>
{{- end}}

{{- define "table"}}
<h3>{{.Collection.Name}}</h3>
<p class="note">{{records .Collection.Records}}{{if .Collection.File}}; also in <a href="{{.Collection.CSV}}">{{.Collection.CSV}}</a> and <a href="{{.Collection.File}}">{{.Collection.File}}</a>{{end}}.</p>
<div class="scroll"><table>
<thead><tr>{{range .Header}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- end}}

{{- define "tableEnd"}}
</tbody></table></div>
{{- if lt .Shown .Read}}
<p class="note">The first {{.Shown}} of {{.Read}} records are shown; every record is in <a href="{{.Collection.CSV}}">{{.Collection.CSV}}</a> and <a href="{{.Collection.File}}">{{.Collection.File}}</a>.</p>
{{- end}}
{{- end}}

{{- define "systemEnd"}}
</section>
{{- end}}

{{- define "foot"}}
</body>
</html>
{{end}}
`))

// writeRow writes one record's row of a table: each cell is text inside a
// td element, escaped by html/template's escaper for text
// (HTMLEscapeString), called directly rather than through a template,
// which cost several times more per row.
func writeRow(w *bufio.Writer, cells []string) error {
	_, _ = w.WriteString("\n<tr>")
	for _, c := range cells {
		_, _ = w.WriteString("<td>")
		_, _ = w.WriteString(template.HTMLEscapeString(c))
		_, _ = w.WriteString("</td>")
	}
	_, err := w.WriteString("</tr>")
	return err
}
