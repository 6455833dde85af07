// Package csvsafe keeps the cells of a CSV file dsar writes from being run
// as formulas when a spreadsheet opens it (OWASP, "CSV Injection").
package csvsafe

import "regexp"

// formulaStart matches a cell a spreadsheet would read as a formula: one
// starting with =, +, -, @, a tab or a carriage return.
var formulaStart = regexp.MustCompile(`^[=+\-@\t\r]`)

// plainNumber matches a number a spreadsheet reads as a number, never as a
// formula: "-42.5" stays as it is.
var plainNumber = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// Cell returns s as a CSV cell a spreadsheet will not run: a cell it would
// read as a formula is prefixed with a single quote, as OWASP advises,
// unless it is a plain number. Every other cell is returned as it is.
func Cell(s string) string {
	if formulaStart.MatchString(s) && !plainNumber.MatchString(s) {
		return "'" + s
	}
	return s
}

// Row returns row with each cell made safe by Cell, in dst (reused).
func Row(dst, row []string) []string {
	dst = dst[:0]
	for _, s := range row {
		dst = append(dst, Cell(s))
	}
	return dst
}
