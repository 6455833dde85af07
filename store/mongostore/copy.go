package mongostore

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/store"
)

var _ store.Copier = (*Store)(nil)

// copyBatch is how many documents one read of EachDocument takes.
const copyBatch = 500

// copyCollection returns the store's collection name (one of
// store.Collections).
func (s *Store) copyCollection(name string) (*collection, error) {
	switch name {
	case store.Requests:
		return s.reqs, nil
	case store.Jobs:
		return s.jobs, nil
	case store.Audit:
		return s.audit, nil
	case store.ExportRecords:
		return s.exports, nil
	case store.Idempotency:
		return s.idem, nil
	case store.SuppressionList:
		return s.supp, nil
	case store.ConsentEvents:
		return s.consent, nil
	case store.Removals:
		return s.removals, nil
	}
	return nil, fmt.Errorf("copy: no collection %q", name)
}

// Count returns how many documents collection holds.
func (s *Store) Count(ctx context.Context, collection string) (int64, error) {
	c, err := s.copyCollection(collection)
	if err != nil {
		return 0, err
	}
	n, err := c.CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", collection, err)
	}
	return n, nil
}

// copySort is the sort of collection's documents in key order: by _id,
// or for export records by job id then seq (the unique job_seq index).
func copySort(collection string) bson.D {
	if collection == store.ExportRecords {
		return bson.D{{Key: "job_id", Value: 1}, {Key: "seq", Value: 1}}
	}
	return bson.D{{Key: "_id", Value: 1}}
}

// copyRanges are the filters, read one after the other in copySort's
// order, of collection's documents after key: one range of _id, or for
// export records the rest of key's job, then the jobs after it (two
// ranges of the job_seq index, where one $or would not be one).
func copyRanges(collection, after string) ([]bson.D, error) {
	switch {
	case after == "":
		return []bson.D{{}}, nil
	case collection != store.ExportRecords:
		return []bson.D{{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}}}, nil
	}
	job, seq, err := store.ParseExportRecordKey(after)
	if err != nil {
		return nil, err
	}
	return []bson.D{
		{{Key: "job_id", Value: job}, {Key: "seq", Value: bson.D{{Key: "$gt", Value: seq}}}},
		{{Key: "job_id", Value: bson.D{{Key: "$gt", Value: job}}}},
	}, nil
}

// documentKey is doc's key in collection (see store.Copier).
func documentKey(collection string, doc bson.Raw) (string, error) {
	if collection == store.ExportRecords {
		job, ok := doc.Lookup("job_id").StringValueOK()
		seq, ok2 := doc.Lookup("seq").AsInt64OK()
		if !ok || !ok2 {
			return "", fmt.Errorf("%s: a record without job_id or seq", collection)
		}
		return store.ExportRecordKey(job, seq), nil
	}
	id, ok := doc.Lookup("_id").StringValueOK()
	if !ok {
		return "", fmt.Errorf("%s: a document whose _id is not a string", collection)
	}
	return id, nil
}

// EachDocument calls fn for every document of collection whose key sorts
// after after ("" for all), in key order, as stored, reading copyBatch
// documents per round trip, one cursor per range of keys. doc is valid only until fn
// returns. On MongoDB the _id index (the job_seq index for export records)
// serves the sort; FerretDB v1 sorts in memory.
func (s *Store) EachDocument(ctx context.Context, collection, after string, fn func(key string, doc bson.Raw) error) error {
	c, err := s.copyCollection(collection)
	if err != nil {
		return err
	}
	ranges, err := copyRanges(collection, after)
	if err != nil {
		return err
	}
	for _, filter := range ranges {
		if err := eachCopied(ctx, c, filter, copySort(collection), fn); err != nil {
			return err
		}
	}
	return nil
}

// eachCopied calls fn for each document of c matching filter, in sort
// order.
func eachCopied(ctx context.Context, c *collection, filter, sort bson.D, fn func(key string, doc bson.Raw) error) error {
	cur, err := c.Find(ctx, filter, options.Find().SetSort(sort).SetBatchSize(copyBatch))
	if err != nil {
		return fmt.Errorf("copy: read %s: %w", c.Name(), err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		key, err := documentKey(c.Name(), cur.Current)
		if err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		if err := fn(key, cur.Current); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("copy: read %s: %w", c.Name(), err)
	}
	return nil
}

// LastKey returns the key of collection's last document in key order, ""
// when it has none: where a copy into this store that stopped goes on.
func (s *Store) LastKey(ctx context.Context, collection string) (string, error) {
	c, err := s.copyCollection(collection)
	if err != nil {
		return "", err
	}
	sort := copySort(collection)
	for i := range sort {
		sort[i].Value = -1
	}
	var doc bson.Raw
	err = c.FindOne(ctx, bson.D{}, options.FindOne().SetSort(sort)).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("copy: last of %s: %w", collection, err)
	}
	return documentKey(collection, doc)
}

// HasKey reports whether collection holds the document with key.
func (s *Store) HasKey(ctx context.Context, collection, key string) (bool, error) {
	c, err := s.copyCollection(collection)
	if err != nil {
		return false, err
	}
	filter := bson.D{{Key: "_id", Value: key}}
	if collection == store.ExportRecords {
		job, seq, err := store.ParseExportRecordKey(key)
		if err != nil {
			return false, err
		}
		filter = bson.D{{Key: "job_id", Value: job}, {Key: "seq", Value: seq}}
	}
	n, err := c.CountDocuments(ctx, filter, options.Count().SetLimit(1))
	if err != nil {
		return false, fmt.Errorf("copy: find in %s: %w", collection, err)
	}
	return n > 0, nil
}

// PutDocuments inserts docs into collection as they are, in one unordered
// insert, leaving any whose key is stored already as it is: a document
// whose _id is taken (for export records, whose job id and seq are taken,
// by the unique job_seq index) is skipped. Export records without an _id
// (from SQLite) get one. It returns how many it inserted. Call Prepare
// first: the unique indexes must exist.
func (s *Store) PutDocuments(ctx context.Context, collection string, docs []bson.Raw) (int, error) {
	c, err := s.copyCollection(collection)
	if err != nil {
		return 0, err
	}
	if len(docs) == 0 {
		return 0, nil
	}
	_, err = c.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return len(docs), nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		return 0, fmt.Errorf("copy: insert into %s: %w", collection, err)
	}
	for _, we := range bwe.WriteErrors {
		if !mongo.IsDuplicateKeyError(we.WriteError) {
			return 0, fmt.Errorf("copy: insert into %s: %w", collection, err)
		}
	}
	return len(docs) - len(bwe.WriteErrors), nil
}
