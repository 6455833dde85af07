package mongostore

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/internal/mongocompat"
)

// collection is one of the store's collections. It is the only way the
// store reaches a collection (a test checks that no other file of the
// package touches a *mongo.Collection), so no write can miss the FerretDB
// write lane (see internal/mongocompat):
//
//   - conditional writes (UpdateOne, UpdateMany, BulkWrite,
//     FindOneAndUpdate, DeleteMany) take the lane themselves, held until the command has
//     returned: FerretDB v1 runs them as a read then a write, which
//     concurrent writes would interleave;
//   - inserts (InsertOne, InsertMany) and reads do not: an insert is atomic
//     on FerretDB too (a duplicate _id fails);
//   - DeleteByIDs and Touch do not either, named apart so that each use is
//     visible: a delete by _id alone has no condition to race, and Touch
//     overwrites a document whose lost write loses nothing.
//
// On MongoDB the lane is open and costs nothing. Every operation's error
// (but a cursor's, met while iterating) is marked by StorageError, so a
// full disk is dsr.ErrStorageFull and a store that cannot answer now (no
// primary, no connection) dsr.ErrStoreUnavailable to callers however they
// reached the store.
type collection struct {
	c *mongo.Collection
	// lane waits for the write lane; call the function it returns once
	// the write command has returned.
	lane func() (leave func())
}

// newCollection returns the collection name of db, its writes laned by the
// gate gate points to (read at each write: [Store.Prepare] sets it).
func newCollection(db *mongo.Database, name string, gate *mongocompat.Gate) *collection {
	return &collection{c: db.Collection(name), lane: func() func() { return gate.Enter() }}
}

// Name is the collection's name.
func (c *collection) Name() string { return c.c.Name() }

// indexes is the collection's index view, to create its indexes.
func (c *collection) indexes() mongo.IndexView { return c.c.Indexes() }

// InsertOne inserts one document; no lane.
func (c *collection) InsertOne(ctx context.Context, doc any, opts ...options.Lister[options.InsertOneOptions]) (*mongo.InsertOneResult, error) {
	res, err := c.c.InsertOne(ctx, doc, opts...)
	return res, StorageError(err)
}

// InsertMany inserts documents; no lane.
func (c *collection) InsertMany(ctx context.Context, docs any, opts ...options.Lister[options.InsertManyOptions]) (*mongo.InsertManyResult, error) {
	res, err := c.c.InsertMany(ctx, docs, opts...)
	return res, StorageError(err)
}

// UpdateOne updates one document, in the lane.
func (c *collection) UpdateOne(ctx context.Context, filter, update any, opts ...options.Lister[options.UpdateOneOptions]) (*mongo.UpdateResult, error) {
	defer c.lane()()
	res, err := c.c.UpdateOne(ctx, filter, update, opts...)
	return res, StorageError(err)
}

// UpdateMany updates documents, in the lane.
func (c *collection) UpdateMany(ctx context.Context, filter, update any, opts ...options.Lister[options.UpdateManyOptions]) (*mongo.UpdateResult, error) {
	defer c.lane()()
	res, err := c.c.UpdateMany(ctx, filter, update, opts...)
	return res, StorageError(err)
}

// BulkWrite runs write models (conditional updates, upserts) in one
// command, in the lane.
func (c *collection) BulkWrite(ctx context.Context, models []mongo.WriteModel, opts ...options.Lister[options.BulkWriteOptions]) (*mongo.BulkWriteResult, error) {
	defer c.lane()()
	res, err := c.c.BulkWrite(ctx, models, opts...)
	return res, StorageError(err)
}

// FindOneAndUpdate updates one document and returns it, in the lane (the
// command has returned when it does; decoding the result needs no lane).
func (c *collection) FindOneAndUpdate(ctx context.Context, filter, update any, opts ...options.Lister[options.FindOneAndUpdateOptions]) single {
	defer c.lane()()
	return single{c.c.FindOneAndUpdate(ctx, filter, update, opts...)}
}

// single is the answer of FindOne or FindOneAndUpdate, its error marked by
// StorageError like every other operation's.
type single struct{ r *mongo.SingleResult }

// Decode decodes the document into v.
func (u single) Decode(v any) error { return StorageError(u.r.Decode(v)) }

// Err is the command's error.
func (u single) Err() error { return StorageError(u.r.Err()) }

// DeleteMany deletes the documents matching filter, in the lane.
func (c *collection) DeleteMany(ctx context.Context, filter any, opts ...options.Lister[options.DeleteManyOptions]) (*mongo.DeleteResult, error) {
	defer c.lane()()
	res, err := c.c.DeleteMany(ctx, filter, opts...)
	return res, StorageError(err)
}

// DeleteByIDs deletes the documents with these _ids, without the lane: a
// delete conditioned on _id alone has nothing to race.
func (c *collection) DeleteByIDs(ctx context.Context, ids []string) (*mongo.DeleteResult, error) {
	res, err := c.c.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	return res, StorageError(err)
}

// Touch sets field "at" of document id to at, creating the document if
// need be, without the lane: whichever write lands last wins, and either
// is as good.
func (c *collection) Touch(ctx context.Context, id string, at time.Time) (*mongo.UpdateResult, error) {
	res, err := c.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "at", Value: at}}}}, options.UpdateOne().SetUpsert(true))
	return res, StorageError(err)
}

// Find reads the documents matching filter; no lane.
func (c *collection) Find(ctx context.Context, filter any, opts ...options.Lister[options.FindOptions]) (*mongo.Cursor, error) {
	cur, err := c.c.Find(ctx, filter, opts...)
	return cur, StorageError(err)
}

// FindOne reads one document; no lane.
func (c *collection) FindOne(ctx context.Context, filter any, opts ...options.Lister[options.FindOneOptions]) single {
	return single{c.c.FindOne(ctx, filter, opts...)}
}

// CountDocuments counts the documents matching filter; no lane.
func (c *collection) CountDocuments(ctx context.Context, filter any, opts ...options.Lister[options.CountOptions]) (int64, error) {
	n, err := c.c.CountDocuments(ctx, filter, opts...)
	return n, StorageError(err)
}

// Aggregate runs a read-only pipeline; no lane.
func (c *collection) Aggregate(ctx context.Context, pipeline any, opts ...options.Lister[options.AggregateOptions]) (*mongo.Cursor, error) {
	cur, err := c.c.Aggregate(ctx, pipeline, opts...)
	return cur, StorageError(err)
}
