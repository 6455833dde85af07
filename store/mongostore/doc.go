// Package mongostore is the MongoDB store of the domain (package dsr): it
// keeps requests, jobs, exported records, the audit chain and idempotency
// keys, and persists what the domain's rules decide ([dsr.NewAppeal],
// [dsr.Request.Extend], [dsr.CheckMove]...).
//
// It is written for MongoDB and for FerretDB v1 alike: every record is one
// document, every change is a single conditional update, and every query
// has a declared index ([Indexes]; a test checks every command the store
// sends against them). FerretDB v1 does not apply conditional updates
// atomically, so on it the store's writes go through one lane per process
// (see internal/mongocompat), which the store's one collection type
// (gate.go) takes for every conditional write.
package mongostore
