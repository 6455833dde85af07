package mongostore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/dsr"
)

// auditTries bounds how often AppendAudit re-reads a chain after another
// appender took the next sequence number.
const auditTries = 10

// AppendAudit appends an event to request requestID's chain and returns it.
// It sends two commands when uncontended: a read of the chain's last event
// and an insert.
//
// Appends to one chain are linear even from many processes, on MongoDB and
// FerretDB alike: the next event's _id is unique, so of two appenders that
// read the same last event only one insert wins; the loser reads again and
// retries after a random pause (up to 2ms, doubling each time to at most
// 100ms), up to 10 tries in all, then gives up with an error wrapping ErrConflict. Each lost try
// means another append landed, so with up to 10 appenders racing on one
// chain every one succeeds. An insert needs no write gate on FerretDB.
func (s *Store) AppendAudit(ctx context.Context, requestID, actor, kind string, data map[string]string) (*dsr.AuditEvent, error) {
	if err := dsr.CheckAuditInput(requestID, actor, kind, data); err != nil {
		return nil, err
	}
	coll := s.audit
	for try := 1; ; try++ {
		// The head this process appended last saves reading the chain; if
		// another process appended since, the insert below finds the seq
		// taken and the next try reads the chain.
		last, cached := s.heads.get(requestID)
		if !cached || try > 1 {
			err := coll.FindOne(ctx,
				bson.D{{Key: "request_id", Value: requestID}},
				options.FindOne().SetSort(bson.D{{Key: "seq", Value: -1}}).SetProjection(bson.D{{Key: "seq", Value: 1}, {Key: "hash", Value: 1}}),
			).Decode(&last)
			if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
				return nil, fmt.Errorf("audit: read the chain of %s: %w", requestID, err)
			}
		}
		e := &dsr.AuditEvent{
			RequestID: requestID, Seq: last.Seq + 1, At: s.now(), Actor: actor, Kind: kind,
			PrevHash: last.Hash,
		}
		if len(data) > 0 { // without data, stored without it; hashed as {} either way
			e.Data = maps.Clone(data)
		}
		e.ID = dsr.AuditEventID(requestID, e.Seq)
		e.Hash = e.ComputeHash()
		_, err := coll.InsertOne(ctx, e)
		if err == nil {
			s.heads.put(requestID, dsr.AuditEvent{Seq: e.Seq, Hash: e.Hash})
			return e, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return nil, fmt.Errorf("audit: append to %s: %w", requestID, err)
		}
		if try == auditTries {
			return nil, fmt.Errorf("audit: append to %s: lost the race for the next event %d times: %w", requestID, try, dsr.ErrConflict)
		}
		pause := time.NewTimer(rand.N(min(time.Millisecond<<try, 100*time.Millisecond))) //nolint:gosec // jitter needs no cryptographic randomness
		select {
		case <-ctx.Done():
			pause.Stop()
			return nil, fmt.Errorf("audit: append to %s: %w", requestID, ctx.Err())
		case <-pause.C:
		}
	}
}

// AuditTrail returns a request's events in seq order (none when it has no
// chain): one command, and a getMore for each further batch of a long chain.
func (s *Store) AuditTrail(ctx context.Context, requestID string) ([]dsr.AuditEvent, error) {
	cur, err := s.audit.Find(ctx,
		bson.D{{Key: "request_id", Value: requestID}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}),
	)
	if err != nil {
		return nil, fmt.Errorf("audit: read the chain of %s: %w", requestID, err)
	}
	var out []dsr.AuditEvent
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("audit: read the chain of %s: %w", requestID, err)
	}
	return out, nil
}

// EachAuditChain calls fn with every request's chain, request by request
// (in request id order), each chain in seq order, ready for VerifyChain.
//
// It reads the whole collection with one cursor sorted by _id, 100 events
// per round trip, grouping consecutive events by the request id part of
// their _id (which the sort keeps together), so dsar holds one chain at a
// time. An event whose request_id field was changed stays in the chain its
// _id puts it in, where VerifyChain reports it. On MongoDB the sort walks
// the _id index; FerretDB v1 sorts in its own memory, holding the
// collection while the cursor is open.
func (s *Store) EachAuditChain(ctx context.Context, fn func(requestID string, events []dsr.AuditEvent) error) error {
	cur, err := s.audit.Find(ctx, bson.D{},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(100))
	if err != nil {
		return fmt.Errorf("audit: scan: %w", err)
	}
	defer cur.Close(ctx)
	g := dsr.NewChainGrouper(fn)
	for cur.Next(ctx) {
		var e dsr.AuditEvent
		if err := cur.Decode(&e); err != nil {
			return fmt.Errorf("audit: decode an event: %w", err)
		}
		if err := g.Add(e); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("audit: scan: %w", err)
	}
	return g.Flush()
}

// auditHeads remembers, per request, the last event this process appended,
// for a bounded number of requests.
type auditHeads struct {
	mu sync.Mutex
	m  map[string]dsr.AuditEvent
}

const maxAuditHeads = 10_000

func (h *auditHeads) get(requestID string) (dsr.AuditEvent, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.m[requestID]
	return e, ok
}

func (h *auditHeads) put(requestID string, e dsr.AuditEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil || len(h.m) >= maxAuditHeads {
		h.m = map[string]dsr.AuditEvent{} // forget all: each costs one read again
	}
	h.m[requestID] = e
}
