package sqldb

import "errors"

// Reopen returns a copy of c, with the tables c bound at start-up, that
// reaches dsn instead: a server that fails after the connector was built.
func Reopen(c *Connector, dsn string) (*Connector, error) {
	db, _, err := c.d.open(dsn)
	if err != nil {
		return nil, errors.New("reopen: bad dsn")
	}
	cp := *c
	cp.db = db
	return &cp, nil
}
