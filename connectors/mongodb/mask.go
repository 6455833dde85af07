package mongodb

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/mask"
)

// constantMasks reports whether every strategy of ms sets one value whatever
// the field held (null, fixed), so one update masks every document.
func constantMasks(ms Masks) bool {
	for _, m := range ms {
		if k := m.Strategy.Kind; k != "" && k != mask.Null && k != mask.Fixed {
			return false
		}
	}
	return true
}

// maskEach masks, document by document, the fields whose strategy depends
// on the value (hmac, email_format, random). A field already in its masked
// form is left alone, and a document counts as masked when a field whose
// masked form can be recognised changed, so erasing twice reports 0 the
// second time; a document masked only by random strategies, whose output
// cannot be told from a value, is masked and counted again.
func (c *Connector) maskEach(ctx context.Context, coll *mongo.Collection, filter bson.D, ms Masks) (int64, error) {
	proj := bson.D{{Key: "_id", Value: 1}}
	for _, m := range ms {
		proj = append(proj, bson.E{Key: m.Field, Value: 1})
	}
	cur, err := coll.Find(ctx, filter, options.Find().SetProjection(proj).SetBatchSize(500))
	if err != nil {
		return 0, err
	}
	defer cur.Close(ctx)
	var n int64
	for cur.Next(ctx) {
		set := bson.D{}
		counts := false
		for _, m := range ms {
			v, err := plainValue(cur.Current, m.Field)
			if err != nil {
				return n, connectors.Permanent(fmt.Errorf("mask %s: %w", m.Field, err))
			}
			if v == nil {
				continue
			}
			masked, known := mask.Masked(m.Strategy, v)
			if masked && known {
				continue
			}
			out, err := c.spec.masker.Apply(m.Strategy, v)
			if err != nil {
				return n, connectors.Permanent(fmt.Errorf("mask %s: %w", m.Field, err))
			}
			set = append(set, bson.E{Key: m.Field, Value: out})
			counts = counts || known || onlyRandom(ms)
		}
		if len(set) == 0 {
			continue
		}
		r, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: cur.Current.Lookup("_id")}}, bson.D{{Key: "$set", Value: set}})
		if err != nil {
			return n, err
		}
		if counts && r.ModifiedCount > 0 {
			n++
		}
	}
	return n, cur.Err()
}

// onlyRandom reports whether every strategy of ms is random.
func onlyRandom(ms Masks) bool {
	for _, m := range ms {
		if m.Strategy.Kind != mask.Random {
			return false
		}
	}
	return true
}

// plainValue returns the value at a dotted path of doc as a string, nil
// when absent or null, or, for another type, the value for Apply to refuse
// when its strategy masks text only.
func plainValue(doc bson.Raw, path string) (any, error) {
	rv, err := doc.LookupErr(strings.Split(path, ".")...)
	if err != nil {
		return nil, nil // absent: nothing to mask
	}
	switch rv.Type {
	case bson.TypeNull, bson.TypeUndefined:
		return nil, nil
	case bson.TypeString:
		return rv.StringValue(), nil
	}
	var v any
	if err := rv.Unmarshal(&v); err != nil {
		return nil, err
	}
	return v, nil
}
