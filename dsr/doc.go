// Package dsr is the domain of data subject rights requests: the request and
// job model, the state machine that moves them, identity normalisation and its
// blind index, legal due dates, and the MongoDB store that keeps all of it.
//
// The store is written for MongoDB and for FerretDB v1 alike: every record is
// one document, every change is a single conditional update, and every query
// has a declared index ([Indexes]; a test checks every command the store
// sends against them). FerretDB v1 does not apply conditional updates
// atomically, so on it the store's writes go through one lane per process
// (see internal/mongocompat).
package dsr
