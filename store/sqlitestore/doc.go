// Package sqlitestore is dsar's embedded store: one SQLite file (pure Go,
// modernc.org/sqlite; no cgo), the default when no MongoDB is configured.
//
// Each request, job and audit event is kept as a document, the same
// bson-tagged value MongoDB stores, written as relaxed Extended JSON in a
// doc column; the fields the store's queries filter or sort by are real
// columns beside it, each query served by an index (a test checks every
// query's plan with EXPLAIN QUERY PLAN). Every conditional update is one
// transaction that reads the document, checks its condition in Go and
// writes it back, so two actors never both move one request; the audit
// events a change adds are written in the same transaction.
//
// The file is in WAL mode: readers never wait for the writer, and several
// dsar processes on one machine (serve, worker, scheduler) may share it.
// Writes take SQLite's one write lock (BEGIN IMMEDIATE), waiting up to the
// busy timeout for another process's transaction to end.
package sqlitestore
