package mongostore

import (
	"context"
	"fmt"

	"github.com/dsar-project/dsar/store"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// keysBatch is how many requests one read of EachWrappedKeys returns.
const keysBatch = 500

// EachWrappedKeys calls fn with the wrapped data keys of every request that
// holds one, in id order, ids after after ("" for all), reading in batches
// (each a find on _id, projected to the keys).
func (s *Store) EachWrappedKeys(ctx context.Context, after string, fn func(id, dataKey, exportKey string) error) error {
	type keys struct {
		ID        string `bson:"_id"`
		DataKey   string `bson:"data_key"`
		ExportKey string `bson:"export_key"`
	}
	for {
		cur, err := s.reqs.Find(ctx, bson.D{
			{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}},
			{Key: "$or", Value: bson.A{
				bson.D{{Key: "data_key", Value: bson.D{{Key: "$exists", Value: true}}}},
				bson.D{{Key: "export_key", Value: bson.D{{Key: "$exists", Value: true}}}},
			}},
		}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(keysBatch).
			SetProjection(bson.D{{Key: "data_key", Value: 1}, {Key: "export_key", Value: 1}}))
		if err != nil {
			return fmt.Errorf("wrapped keys: %w", err)
		}
		var batch []keys
		if err := cur.All(ctx, &batch); err != nil {
			return fmt.Errorf("wrapped keys: %w", err)
		}
		for _, k := range batch {
			if err := fn(k.ID, k.DataKey, k.ExportKey); err != nil {
				return err
			}
		}
		if len(batch) < keysBatch {
			return nil
		}
		after = batch[len(batch)-1].ID
	}
}

// SwapWrappedKeys replaces request id's wrapped keys, in one conditional
// update, as [store.WrappedKeys] says.
func (s *Store) SwapWrappedKeys(ctx context.Context, id, oldData, newData, oldExport, newExport string) (bool, error) {
	cond := func(v string) any {
		if v == "" {
			return nil // missing
		}
		return v
	}
	set := bson.D{}
	if oldData != "" && newData != "" {
		set = append(set, bson.E{Key: "data_key", Value: newData})
	}
	if oldExport != "" && newExport != "" {
		set = append(set, bson.E{Key: "export_key", Value: newExport})
	}
	if len(set) == 0 {
		return false, nil
	}
	res, err := s.reqs.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "data_key", Value: cond(oldData)}, {Key: "export_key", Value: cond(oldExport)}},
		bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return false, fmt.Errorf("swap wrapped keys: %w", err)
	}
	return res.ModifiedCount == 1, nil
}

// SwapHashes replaces request id's blind-index hashes in one conditional
// update, as [store.IndexHashes] says.
func (s *Store) SwapHashes(ctx context.Context, id string, from, to store.Hashes) (bool, error) {
	is := func(hs []string) any {
		if len(hs) == 0 {
			return bson.D{{Key: "$in", Value: bson.A{nil, bson.A{}}}} // missing, null or empty
		}
		return hs
	}
	res, err := s.reqs.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "identity_hashes", Value: is(from.Identity)}, {Key: "proven_hashes", Value: is(from.Proven)}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "identity_hashes", Value: nonNil(to.Identity)},
			{Key: "proven_hashes", Value: nonNil(to.Proven)},
		}}})
	if err != nil {
		return false, fmt.Errorf("swap hashes: %w", err)
	}
	return res.ModifiedCount == 1, nil
}

// nonNil returns hs, or an empty list for nil: stored as [], not null.
func nonNil(hs []string) []string {
	if hs == nil {
		return []string{}
	}
	return hs
}
