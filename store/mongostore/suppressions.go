package mongostore

import (
	"context"
	"errors"
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

// suppressBatch is how many entries one command of Suppress carries.
const suppressBatch = 500

// liftBatch is how many hashes one write of LiftSuppressions carries: a
// person's (the application names at most 100 at a time). Small, because
// FerretDB v1 compares every document of the collection with every hash
// of a command.
const liftBatch = 100

// changeBatch is how many entries one round trip of the change feed
// brings: a checker reads the whole list at start-up.
const changeBatch = 1000

// Suppress records entries, suppressBatch at a time, in at most three
// commands per batch, each atomic per entry:
//
//  1. one unordered insert of the batch's entries: those new to the store
//     are created; those it already holds fail as duplicate keys;
//  2. of those, one find of the lifted ones (_id and lifted_at present);
//  3. only if there are some, one unordered bulk write replacing each by
//     the new entry under the same condition (lifted), which re-activates
//     it: its source, request, partner and At replaced, its lift cleared.
//
// An active entry is left as it is: the first suppression stands. An entry
// lifted or re-activated by another writer between 2 and 3 is left as that
// writer left it (as if this suppression had come first). On FerretDB v1,
// which reads every document of a collection for each filtered command,
// a batch costs one such read (the find), not one per entry; the
// re-activations, rare, one each. It returns how many entries the commands
// created or re-activated. An entry given twice in entries counts once, as
// first given.
func (s *Store) Suppress(ctx context.Context, entries []dsr.Suppression) (int, error) {
	if err := store.CheckSuppressions(entries); err != nil {
		return 0, err
	}
	seen := make(map[string]bool, len(entries))
	total := 0
	for part := range slices.Chunk(entries, suppressBatch) {
		now := s.now()
		docs := make([]*dsr.Suppression, 0, len(part))
		for _, e := range part {
			id := dsr.SuppressionID(e.Hash, e.Scope)
			if seen[id] {
				continue
			}
			seen[id] = true
			docs = append(docs, &dsr.Suppression{ID: id, Hash: e.Hash, Scope: e.Scope, Source: e.Source,
				RequestID: e.RequestID, Partner: e.Partner, At: e.At, UpdatedAt: now})
		}
		n, err := s.suppressBatch(ctx, docs)
		total += n
		if err != nil {
			return total, fmt.Errorf("suppress: %w", err)
		}
	}
	return total, nil
}

// liftedID is the _id of a lifted entry, as suppressBatch finds them.
type liftedID struct {
	ID string `bson:"_id"`
}

// suppressBatch stores docs (distinct entries, as Suppress writes them)
// and returns how many it created or re-activated.
func (s *Store) suppressBatch(ctx context.Context, docs []*dsr.Suppression) (int, error) {
	if len(docs) == 0 {
		return 0, nil
	}
	many := make([]any, len(docs))
	for i, d := range docs {
		many[i] = d
	}
	_, err := s.supp.InsertMany(ctx, many, options.InsertMany().SetOrdered(false))
	if err == nil {
		return len(docs), nil
	}
	var bwe mongo.BulkWriteException
	if !onlyDuplicates(err) || !errors.As(err, &bwe) {
		return 0, err
	}
	created := len(docs) - len(bwe.WriteErrors)
	stored := make(map[string]*dsr.Suppression, len(bwe.WriteErrors))
	ids := make([]string, 0, len(bwe.WriteErrors))
	for _, we := range bwe.WriteErrors {
		if we.Index < 0 || we.Index >= len(docs) {
			return created, fmt.Errorf("insert: a write error of entry %d of %d", we.Index, len(docs))
		}
		d := docs[we.Index]
		stored[d.ID] = d
		ids = append(ids, d.ID)
	}
	lifted := bson.D{{Key: "$exists", Value: true}}
	var models []mongo.WriteModel
	err = stream(ctx, s.supp, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}, {Key: "lifted_at", Value: lifted}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}), func(l *liftedID) error {
			if d := stored[l.ID]; d != nil {
				models = append(models, mongo.NewReplaceOneModel().
					SetFilter(bson.D{{Key: "_id", Value: d.ID}, {Key: "lifted_at", Value: lifted}}).
					SetReplacement(d))
			}
			return nil
		})
	if err != nil || len(models) == 0 {
		return created, err
	}
	res, err := s.supp.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	if err != nil {
		return created, err
	}
	return created + int(res.ModifiedCount), nil
}

// LiftSuppressions lifts the active entries of hashes under exactly scope
// (by _id, lifted_at absent), suppressBatch hashes per command, and
// returns how many it lifted.
func (s *Store) LiftSuppressions(ctx context.Context, hashes []string, scope dsr.Scope, by, reason string) (int, error) {
	total := 0
	for part := range slices.Chunk(hashes, liftBatch) {
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
