package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dsar-project/dsar/connectors"
)

// mysqlDialect is the MySQL and MariaDB dialect, through
// go-sql-driver/mysql.
type mysqlDialect struct{}

// open sets what the connector relies on, whatever the DSN says: times
// parsed (parseTime, in UTC unless loc says otherwise), arguments sent to
// the server apart from the statement (no client-side interpolation) and
// one statement per call.
func (mysqlDialect) open(dsn string) (*sql.DB, string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, "", errors.New("dsn: not a go-sql-driver/mysql DSN (user:${PASSWORD}@tcp(host:3306)/database)")
	}
	cfg.ParseTime = true
	cfg.InterpolateParams = false
	cfg.MultiStatements = false
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("dsn: %w", err)
	}
	db := sql.OpenDB(conn)
	poolDefaults(db)
	return db, cfg.DBName, nil
}

func (mysqlDialect) currentSchema(ctx context.Context, db *sql.DB) (string, error) {
	var s sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&s); err != nil {
		return "", err
	}
	if !s.Valid {
		return "", errors.New("the dsn names no database: add /DATABASE to it, or set schema")
	}
	return s.String, nil
}

// charsetName is what a character set's name must look like to be written
// into a statement (CONVERT(? USING name)).
var charsetName = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

func (d mysqlDialect) readSchema(ctx context.Context, db *sql.DB, schema string, names []string) (*liveSchema, error) {
	s := &liveSchema{name: schema, tables: map[string]*table{}, parents: map[string][]string{}}
	q := &query{d: d}
	q.add(`SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE = 'YES',
	COALESCE(CHARACTER_MAXIMUM_LENGTH, 0), COALESCE(CHARACTER_SET_NAME, '')
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = `, q.arg(schema), ` AND TABLE_NAME IN (`, q.list(names), `)
ORDER BY TABLE_NAME, ORDINAL_POSITION`)
	rows, err := db.QueryContext(ctx, q.String(), q.args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var tname, colType string
		col := &column{}
		if err := rows.Scan(&tname, &col.name, &col.dataType, &colType, &col.nullable, &col.maxLen, &col.charset); err != nil {
			_ = rows.Close()
			return nil, err
		}
		col.dataType = strings.ToLower(col.dataType)
		switch col.dataType {
		case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
			col.class = classText
			if !charsetName.MatchString(col.charset) {
				col.class = classOther // not written into a statement
			}
		case "tinyint", "smallint", "mediumint", "int", "bigint":
			col.class = classInt
			col.intBits = map[string]int{"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "bigint": 64}[col.dataType]
			col.unsigned = strings.Contains(strings.ToLower(colType), "unsigned")
		case "decimal", "float", "double":
			col.class = classNumber
		}
		t := s.tables[tname]
		if t == nil {
			t = &table{name: tname, columns: map[string]*column{}}
			s.tables[tname] = t
		}
		t.columns[col.name] = col
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}

	rows, err = db.QueryContext(ctx, `
SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = ? AND CONSTRAINT_NAME = 'PRIMARY'
ORDER BY TABLE_NAME, ORDINAL_POSITION`, schema)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var tname, cname string
		if err := rows.Scan(&tname, &cname); err != nil {
			_ = rows.Close()
			return nil, err
		}
		if t := s.tables[tname]; t != nil {
			t.pk = append(t.pk, cname)
		}
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}

	rows, err = db.QueryContext(ctx, `
SELECT DISTINCT TABLE_SCHEMA, TABLE_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME
FROM information_schema.KEY_COLUMN_USAGE WHERE REFERENCED_TABLE_NAME IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var cs, cn, ps, pn string
		if err := rows.Scan(&cs, &cn, &ps, &pn); err != nil {
			_ = rows.Close()
			return nil, err
		}
		if child, parent := node(cs, cn), node(ps, pn); child != parent {
			s.parents[child] = append(s.parents[child], parent)
		}
	}
	return s, closeRows(rows)
}

// list adds each of vals as an argument and returns their placeholders,
// comma-separated.
func (q *query) list(vals []string) string {
	ph := make([]string, len(vals))
	for i, v := range vals {
		ph[i] = q.arg(v)
	}
	return strings.Join(ph, ", ")
}

func quoteMySQL(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

func (mysqlDialect) table(schema, name string) string {
	return quoteMySQL(schema) + "." + quoteMySQL(name)
}
func (mysqlDialect) column(name string) string { return quoteMySQL(name) }
func (mysqlDialect) param(int) string          { return "?" }

// in compares text exactly: MySQL's usual collations fold case and ignore
// trailing spaces ('ABC' = 'abc '), which would reach another person's
// row. The plain comparison lets an index find the candidates; the
// comparison of bytes, in the column's character set, keeps the exact
// ones.
func (mysqlDialect) in(q *query, col *column, ident string, vals []any) string {
	ph := make([]string, len(vals))
	for i, v := range vals {
		ph[i] = q.arg(v)
	}
	cond := ident + " IN (" + strings.Join(ph, ", ") + ")"
	if col.class != classText {
		return cond
	}
	exact := make([]string, len(vals))
	for i, v := range vals {
		exact[i] = "CAST(CONVERT(" + q.arg(v) + " USING " + col.charset + ") AS BINARY)"
	}
	return "(" + cond + " AND CAST(" + ident + " AS BINARY) IN (" + strings.Join(exact, ", ") + "))"
}

func (mysqlDialect) differs(q *query, ident string, v any) string {
	return "NOT (" + ident + " <=> " + q.arg(v) + ")"
}

// The MySQL errors retrying cannot fix.
var mysqlPermanent = map[uint16]bool{
	1044: true, // access denied to the database
	1045: true, // access denied: rejected credentials
	1049: true, // unknown database
	1142: true, // command denied on a table
	1143: true, // command denied on a column
	1146: true, // table does not exist
	1054: true, // unknown column
	1451: true, // a row is still referenced (foreign key)
	1452: true, // a foreign key fails
	1062: true, // duplicate key: a mask value on a unique column
	1048: true, // column cannot be null
	1406: true, // data too long
	1366: true, // incorrect value for the column
	1292: true, // truncated incorrect value
	1698: true, // access denied (auth plugin)
	1227: true, // access denied: needs a privilege
}

func (mysqlDialect) classify(err error) error {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return err
	}
	switch {
	case me.Number == 1040 || me.Number == 1203: // too many connections
		return connectors.RetryAfter(5*time.Second, err)
	case mysqlPermanent[me.Number]:
		return connectors.Permanent(err)
	}
	return err
}

// mysqlNumber returns the error number of a MySQL error.
func mysqlNumber(err error) (uint16, bool) {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number, true
	}
	return 0, false
}

func (mysqlDialect) retryable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1213 // deadlock
}

func (mysqlDialect) describe(err error) (string, bool) {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return "", false
	}
	return fmt.Sprintf("mysql: error %d (%s): %s", me.Number, me.SQLState[:], stripQuoted(me.Message)), true
}
