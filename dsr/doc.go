// Package dsr is the domain of data subject rights requests: the request and
// job model, the state machine that moves them (state.go), the legal clock
// (regulation.go, clock.go, deadline.go, pause.go), appeals (appeal.go),
// identity normalisation and its blind index, the audit chain's hashing,
// and the MongoDB store that keeps all of it.
//
// The rules are plain functions and methods that need no database:
// [NewAppeal], [Request.Extend], [Request.PauseClock], [Request.Overdue]...
// The store's methods call them and persist what they decide.
//
// Every use of MongoDB is in the files named store*.go, and only there (a
// test checks it), so that the store can move to a package of its own.
// The store is written for MongoDB and for FerretDB v1 alike: every record is
// one document, every change is a single conditional update, and every query
// has a declared index ([Indexes]; a test checks every command the store
// sends against them). FerretDB v1 does not apply conditional updates
// atomically, so on it the store's writes go through one lane per process
// (see internal/mongocompat), which the store's one collection type
// (store_gate.go) takes for every conditional write.
package dsr
