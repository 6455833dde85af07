package mongostore

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/dsr"
)

// OpenDuplicates returns, in one query, every request that a new request of
// one of types, received at since or later, could be a duplicate of: open
// ones with an established identity ([dsr.DuplicateCandidates]) whose proven
// identities share one of hashes (blind-index hashes), appeals left out.
// Only the fields [dsr.PickDuplicate] reads are filled in. It serves a whole batch of filings at
// once; pick each one's duplicate from the result with PickDuplicate.
func (s *Store) OpenDuplicates(ctx context.Context, hashes []string, types []dsr.Type, since time.Time) ([]dsr.Request, error) {
	if len(hashes) == 0 || len(types) == 0 {
		return nil, nil
	}
	cur, err := s.reqs.Find(ctx,
		bson.D{
			{Key: "proven_hashes", Value: bson.D{{Key: "$in", Value: hashes}}},
			{Key: "type", Value: bson.D{{Key: "$in", Value: types}}},
			{Key: "status", Value: bson.D{{Key: "$in", Value: dsr.DuplicateCandidates}}},
			{Key: "received_at", Value: bson.D{{Key: "$gte", Value: since}}},
			{Key: "appeal_of", Value: nil},
		},
		options.Find().SetProjection(bson.D{
			{Key: "type", Value: 1}, {Key: "status", Value: 1}, {Key: "proven_hashes", Value: 1}, {Key: "received_at", Value: 1},
			{Key: "appeal_of", Value: 1},
		}).SetBatchSize(10_000))
	if err != nil {
		return nil, fmt.Errorf("find duplicates: %w", err)
	}
	var out []dsr.Request
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("find duplicates: %w", err)
	}
	return out, nil
}
