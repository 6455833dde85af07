package mongostore

import (
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/dsar-project/dsar/dsr"
)

// ServerSelectionTimeout is how long an operation waits for a server it
// can use (on a replica set: the primary) before it fails with
// dsr.ErrStoreUnavailable. It outlasts a replica set's election (about 12 s
// at MongoDB's default electionTimeoutMillis of 10 s), so a write caught by
// a step-down waits for the new primary and is retried there once by the
// driver (retryable writes) instead of failing.
const ServerSelectionTimeout = 15 * time.Second

// ClientOptions returns the options dsar's store connects with: those of
// uri, and, where uri does not set them, the settings that make an
// acknowledged write durable:
//
//   - write concern majority with journal (w=majority&journal=true): a 202
//     is answered only once the request is on disk on a majority of the
//     replica set, so no failover can roll it back;
//   - reads from the primary (read your own writes: a request's next
//     transition reads what its last one wrote);
//   - retryable writes and reads (the driver's defaults, kept): an
//     operation interrupted by a step-down or a dropped connection is
//     retried once on the new primary, the server recognising a write it
//     already applied;
//   - ServerSelectionTimeout.
//
// uri's own w, journal, readPreference or retryWrites win: an operator who
// sets them has chosen. app names the process in the server's logs.
func ClientOptions(uri, app string) *options.ClientOptions {
	opts := options.Client().ApplyURI(uri).SetAppName(app)
	if opts.ServerSelectionTimeout == nil {
		opts.SetServerSelectionTimeout(ServerSelectionTimeout)
	}
	if opts.WriteConcern == nil {
		opts.SetWriteConcern(&writeconcern.WriteConcern{W: writeconcern.WCMajority, Journal: new(true)})
	}
	if opts.ReadPreference == nil {
		opts.SetReadPreference(readpref.Primary())
	}
	return opts
}

// Connect returns a client for dsar's store at uri with ClientOptions. It
// dials lazily: an unreachable server is an error of the first operation.
func Connect(uri, app string) (*mongo.Client, error) {
	client, err := mongo.Connect(ClientOptions(uri, app))
	if err != nil {
		return nil, fmt.Errorf("connect to MongoDB: %w", err)
	}
	return client, nil
}

// transientCodes are MongoDB's error codes of a server that cannot serve
// the operation now but may shortly: a replica set electing, a node
// shutting down or unreachable, a write concern not met in time.
var transientCodes = []int{
	6,     // HostUnreachable
	7,     // HostNotFound
	64,    // WriteConcernFailed (wtimeout): applied on the primary, not yet on a majority
	89,    // NetworkTimeout
	91,    // ShutdownInProgress
	189,   // PrimarySteppedDown
	262,   // ExceededTimeLimit
	9001,  // SocketException
	10107, // NotWritablePrimary
	11600, // InterruptedAtShutdown
	11602, // InterruptedDueToReplStateChange
	13435, // NotPrimaryNoSecondaryOk
	13436, // NotPrimaryOrSecondary
}

// transient reports whether err says the store could not serve the
// operation now: no server could be selected in time (no primary during
// an election), the connection failed or timed out, or the server answered
// with a transient code or label.
func transient(err error) bool {
	if errors.As(err, new(topology.ServerSelectionError)) ||
		mongo.IsNetworkError(err) || mongo.IsTimeout(err) {
		return true
	}
	var le mongo.LabeledError
	if errors.As(err, &le) && (le.HasErrorLabel("RetryableWriteError") || le.HasErrorLabel("TransientTransactionError")) {
		return true
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		for _, code := range transientCodes {
			if se.HasErrorCode(code) {
				return true
			}
		}
	}
	return false
}

// unavailable marks err with dsr.ErrStoreUnavailable when it is transient
// (see transient), else returns it unchanged.
func unavailable(err error) error {
	if err == nil || errors.Is(err, dsr.ErrStoreUnavailable) || !transient(err) {
		return err
	}
	return fmt.Errorf("%w: %w", dsr.ErrStoreUnavailable, err)
}
