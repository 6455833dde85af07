// Package dsr is the domain of data subject rights requests: the request and
// job model, the state machine that moves them (state.go), the legal clock
// (regulation.go, clock.go, deadline.go, pause.go), appeals (appeal.go),
// identity normalisation and its blind index, the audit chain's hashing.
//
// The rules are plain functions and methods that need no database:
// [NewAppeal], [Request.Extend], [Request.PauseClock], [Request.Overdue]...
// A store (the MongoDB one is package store/mongostore) calls them and
// persists what they decide.
//
// The domain imports no store and no database driver (a test checks it):
// the store depends on the domain, never the other way round.
package dsr
