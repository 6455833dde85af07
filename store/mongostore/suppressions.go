package mongostore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
)

// The collections of the suppression list, the consent history and the
// removals from segments.
const (
	SuppressionsCollection  = store.SuppressionList
	ConsentEventsCollection = store.ConsentEvents
	RemovalsCollection      = store.Removals
)

// suppressBatch is how many entries (or hashes) one command of Suppress
// (or LiftSuppressions) carries.
const suppressBatch = 500

// changeBatch is how many entries one round trip of the change feed
// brings: a checker reads the whole list at start-up.
const changeBatch = 1000

// Suppress records entries, suppressBatch per command: one unordered bulk
// write of two updates per entry, whose outcome does not depend on their
// order:
//
//   - a replacement of the entry by the new one, only if it is lifted
//     (filter: _id, lifted_at present): it re-activates a lifted entry;
//   - an upsert by _id whose update is only $setOnInsert: it creates an
//     entry new to the store, and leaves one that exists as it is.
//
// An active entry matches the second only and is left as it is: the first
// suppression stands. Both are plain update operators, so FerretDB v1 runs
// them too (in the write lane). It returns how many entries the commands
// re-activated (modified) or created (upserted). An entry given twice in
// entries counts once, as first given.
func (s *Store) Suppress(ctx context.Context, entries []dsr.Suppression) (int, error) {
	seen := make(map[string]bool, len(entries))
	total := 0
	for part := range slices.Chunk(entries, suppressBatch) {
		now := s.now()
		models := make([]mongo.WriteModel, 0, 2*len(part))
		for _, e := range part {
			id := dsr.SuppressionID(e.Hash, e.Scope)
			if seen[id] {
				continue
			}
			seen[id] = true
			doc := dsr.Suppression{ID: id, Hash: e.Hash, Scope: e.Scope, Source: e.Source, RequestID: e.RequestID,
				Partner: e.Partner, At: e.At, UpdatedAt: now}
			fields, err := withoutID(&doc)
			if err != nil {
				return total, fmt.Errorf("suppress: %w", err)
			}
			models = append(models,
				mongo.NewReplaceOneModel().
					SetFilter(bson.D{{Key: "_id", Value: id}, {Key: "lifted_at", Value: bson.D{{Key: "$exists", Value: true}}}}).
					SetReplacement(doc),
				mongo.NewUpdateOneModel().
					SetFilter(bson.D{{Key: "_id", Value: id}}).
					SetUpdate(bson.D{{Key: "$setOnInsert", Value: fields}}).
					SetUpsert(true))
		}
		if len(models) == 0 {
			continue
		}
		res, err := s.supp.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
		// A duplicate key: an upsert that lost a race with another's
		// insert of the entry (MongoDB retries those itself; a sharded
		// cluster may not). The entry exists, as it should.
		if err != nil && !onlyDuplicates(err) {
			return total, fmt.Errorf("suppress: %w", err)
		}
		if res != nil {
			total += int(res.ModifiedCount + res.UpsertedCount)
		}
	}
	return total, nil
}

// withoutID is the bson form of v without its _id: what $setOnInsert
// sets (the upsert takes the _id from its filter).
func withoutID(v any) (bson.D, error) {
	raw, err := bson.Marshal(v)
	if err != nil {
		return nil, err
	}
	elems, err := bson.Raw(raw).Elements()
	if err != nil {
		return nil, err
	}
	out := make(bson.D, 0, len(elems))
	for _, e := range elems {
		if e.Key() != "_id" {
			out = append(out, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	return out, nil
}

// LiftSuppressions lifts the active entries of hashes under exactly scope
// (by _id, lifted_at absent), suppressBatch hashes per command, and
// returns how many it lifted.
func (s *Store) LiftSuppressions(ctx context.Context, hashes []string, scope dsr.Scope, by, reason string) (int, error) {
	total := 0
	for part := range slices.Chunk(hashes, suppressBatch) {
		ids := make([]string, len(part))
		for i, h := range part {
			ids[i] = dsr.SuppressionID(h, scope)
		}
		now := s.now()
		set := bson.D{{Key: "lifted_at", Value: now}, {Key: "updated_at", Value: now}}
		if by != "" {
			set = append(set, bson.E{Key: "lifted_by", Value: by})
		}
		if reason != "" {
			set = append(set, bson.E{Key: "lift_reason", Value: reason})
		}
		res, err := s.supp.UpdateMany(ctx,
			bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}, {Key: "lifted_at", Value: bson.D{{Key: "$exists", Value: false}}}},
			bson.D{{Key: "$set", Value: set}})
		if err != nil {
			return total, fmt.Errorf("lift suppressions: %w", err)
		}
		total += int(res.ModifiedCount)
	}
	return total, nil
}

// Suppressions returns every entry of hashes, active or lifted (index
// hash).
func (s *Store) Suppressions(ctx context.Context, hashes []string) ([]dsr.Suppression, error) {
	if len(hashes) == 0 {
		return nil, nil
	}
	var out []dsr.Suppression
	err := each(ctx, s.supp, bson.D{{Key: "hash", Value: bson.D{{Key: "$in", Value: hashes}}}}, func(e *dsr.Suppression) error {
		out = append(out, *e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read suppressions: %w", err)
	}
	return out, nil
}

// EachSuppressionChange calls fn for every entry updated at since or
// later, in (UpdatedAt, ID) order (index updated_id), changeBatch entries
// per round trip.
func (s *Store) EachSuppressionChange(ctx context.Context, since time.Time, fn func(*dsr.Suppression) error) error {
	return stream(ctx, s.supp, bson.D{{Key: "updated_at", Value: bson.D{{Key: "$gte", Value: since}}}},
		options.Find().SetSort(bson.D{{Key: "updated_at", Value: 1}, {Key: "_id", Value: 1}}).SetBatchSize(changeBatch), fn)
}

// AddConsentEvents stores events in one unordered insert; an event whose
// ID is stored already is skipped.
func (s *Store) AddConsentEvents(ctx context.Context, events []dsr.ConsentEvent) error {
	if err := insertNew(ctx, s.consent, events); err != nil {
		return fmt.Errorf("add consent events: %w", err)
	}
	return nil
}

// ConsentHistory returns the events that concern any of hashes, oldest
// first (At, then ID), at most limit of them (index hashes_at_id).
func (s *Store) ConsentHistory(ctx context.Context, hashes []string, limit int) ([]dsr.ConsentEvent, error) {
	if len(hashes) == 0 || limit <= 0 {
		return nil, nil
	}
	var out []dsr.ConsentEvent
	err := stream(ctx, s.consent, bson.D{{Key: "hashes", Value: bson.D{{Key: "$in", Value: hashes}}}},
		options.Find().SetSort(bson.D{{Key: "at", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit)),
		func(e *dsr.ConsentEvent) error {
			out = append(out, *e)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("consent history: %w", err)
	}
	return out, nil
}

// AddRemovals stores removals in one unordered insert; one whose ID is
// stored already is skipped.
func (s *Store) AddRemovals(ctx context.Context, removals []dsr.Removal) error {
	if err := insertNew(ctx, s.removals, removals); err != nil {
		return fmt.Errorf("add removals: %w", err)
	}
	return nil
}

// EachRemoval calls fn for every removal with from <= At < to, in (At, ID)
// order (index at_id), 100 per round trip.
func (s *Store) EachRemoval(ctx context.Context, from, to time.Time, fn func(*dsr.Removal) error) error {
	return stream(ctx, s.removals, bson.D{{Key: "at", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lt", Value: to}}}},
		options.Find().SetSort(bson.D{{Key: "at", Value: 1}, {Key: "_id", Value: 1}}).SetBatchSize(100), fn)
}

// insertNew inserts docs in one unordered command, skipping those whose
// _id is stored already.
func insertNew[T any](ctx context.Context, c *collection, docs []T) error {
	if len(docs) == 0 {
		return nil
	}
	many := make([]any, len(docs))
	for i := range docs {
		many[i] = &docs[i]
	}
	_, err := c.InsertMany(ctx, many, options.InsertMany().SetOrdered(false))
	if err != nil && !onlyDuplicates(err) {
		return err
	}
	return nil
}
