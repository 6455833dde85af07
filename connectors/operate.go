package connectors

import (
	"context"
	"errors"
)

// Checker is implemented by connectors that can check themselves against their live system.
type Checker interface {
	// Check reports, one Check per line of `dsar connectors test`, whether the system is
	// reachable, the credentials are accepted, the named collections/tables/fields exist and the
	// permissions are enough for each action the connector is configured for.
	Check(ctx context.Context) []Check
}

// Check is one thing a Checker checked.
type Check struct {
	What string // "reachable", "collection customers", "permission to delete in invoices"
	Err  error  // nil when it passed
}

// ErrNotChecked marks a [Check] that could not be made, because the system
// does not say (a server without the command that would tell, a user not
// allowed to ask). Wrap it with the reason ("%w: server does not say"):
// `dsar connectors test` shows such a check as unknown, never as passed,
// and fails on it only with --strict.
var ErrNotChecked = errors.New("not checked")

// Passed reports whether c passed.
func (c Check) Passed() bool { return c.Err == nil }

// Unknown reports whether c could not be made (its Err wraps
// [ErrNotChecked]).
func (c Check) Unknown() bool { return errors.Is(c.Err, ErrNotChecked) }

// Discoverer is implemented by connectors that can scan their system for personal data the
// connectors file does not cover.
type Discoverer interface {
	// Discover reads at most opts.Sample documents or rows per collection or table, calls found
	// for each field that holds identity-shaped values (email, phone, customer id) and that the
	// connector's configuration does not cover, and returns how much it read. It never stores,
	// logs or returns the values themselves.
	Discover(ctx context.Context, opts DiscoverOptions, found func(Finding)) (Scanned, error)
}

// DefaultSample is how many documents or rows per collection or table a
// Discover with DiscoverOptions.Sample 0 reads.
const DefaultSample = 100

// DiscoverOptions bound and follow a Discover.
type DiscoverOptions struct {
	// Sample is the most documents or rows read per collection or table;
	// 0 or less means DefaultSample. Which ones is the connector's choice,
	// and its docs say (the first in the server's natural order, a random
	// sample).
	Sample int
	// Progress, when set, is called after each collection or table with
	// how many of the total the connector will scan it has scanned; total
	// is known before the first is read. It is called from the goroutine
	// that called Discover.
	Progress func(done, total int)
}

// SampleSize returns o.Sample, or DefaultSample when it is 0 or less.
func (o DiscoverOptions) SampleSize() int {
	if o.Sample <= 0 {
		return DefaultSample
	}
	return o.Sample
}

// Finding is one field that holds identity-shaped values which the
// connector's configuration does not cover. It carries counts only, never a
// value.
type Finding struct {
	// Collection is the collection or table, Field the field or column (a
	// dotted path inside a document: "shipping.email", "members" for an
	// array of plain values, "members.email" for an array of
	// sub-documents).
	Collection string
	Field      string
	// Kind is the identity kind the values look like: one of
	// IdentityKinds.
	Kind string
	// Matches is how many of the Sampled documents or rows hold a value of
	// Kind in Field; Sampled is how many of Collection were read.
	Matches, Sampled int
	// Covered reports whether Collection itself is in the connector's
	// configuration, so that only Field is missing from it (from its match,
	// or from what an erasure masks); false when the whole collection is
	// new to the file.
	Covered bool
}

// Scanned is how much a Discover read.
type Scanned struct {
	Collections int // collections or tables read
	Documents   int // documents or rows read, over all of them
}
