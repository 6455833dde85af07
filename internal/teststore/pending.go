package teststore

import (
	"github.com/dsar-project/dsar/store"
	"github.com/dsar-project/dsar/store/sqlitestore"
)

// asStore is TEMPORARY: *sqlitestore.Store does not implement store.Store
// until its two halves (branches sqljobs, sqlreq) are merged. Delete this
// file then and assign lite directly.
func asStore(lite *sqlitestore.Store) store.Store {
	var v any = lite
	s, ok := v.(store.Store)
	if !ok {
		panic("teststore: the SQLite driver is not complete yet; run with DSAR_TEST_STORE=mongodb")
	}
	return s
}
