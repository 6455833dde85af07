package mongodb

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/connectors"
)

// memberBatch is how many documents one reply of a member listing's cursor
// carries.
const memberBatch = 500

// EachSegmentMember implements connectors.SegmentLister over the
// collections that have opt_out. A collection whose opt-out pulls from an
// array ({pull: FIELD}) holds segments as documents with member arrays:
// each element of FIELD is a member, known by the identity kind FIELD
// matches. Any other collection holds a document per member, known by
// every match field's values (arrays and dotted paths included); with
// {set: ...}, a document that holds every set value already is opted out
// and not listed.
func (c *Connector) EachSegmentMember(ctx context.Context, fn func(segment string, member connectors.Subject) error) error {
	for _, col := range c.spec.Collections {
		if col.OptOut == nil {
			continue
		}
		var err error
		if col.OptOut.Kind == StrategyPull {
			err = c.eachArrayMember(ctx, col, fn)
		} else {
			err = c.eachDocumentMember(ctx, col, fn)
		}
		if err != nil {
			return fmt.Errorf("list members of %s: %w", col.Name, opaque(err))
		}
	}
	return nil
}

// Segments implements connectors.SegmentLister: the collections with an
// opt_out strategy.
func (c *Connector) Segments() []string {
	var out []string
	for _, col := range c.spec.Collections {
		if col.OptOut != nil {
			out = append(out, col.Name)
		}
	}
	return out
}

// eachArrayMember lists the elements of the pulled array of every document.
func (c *Connector) eachArrayMember(ctx context.Context, col CollectionSpec, fn func(string, connectors.Subject) error) error {
	field, kind := col.OptOut.Field, col.Match[col.OptOut.Field]
	cur, err := c.db.Collection(col.Name).Find(ctx, bson.D{{Key: field, Value: bson.D{{Key: "$exists", Value: true}}}},
		options.Find().SetProjection(bson.D{{Key: field, Value: 1}}).SetBatchSize(memberBatch))
	if err != nil {
		return err
	}
	defer func() { _ = cur.Close(ctx) }()
	for cur.Next(ctx) {
		for _, v := range valuesAt(cur.Current, []string{field}) {
			if err := fn(col.Name, connectors.Subject{Identities: []connectors.Identity{{Kind: kind, Value: v}}}); err != nil {
				return err
			}
		}
	}
	return cur.Err()
}

// eachDocumentMember lists every document not opted out yet, by its match
// fields.
func (c *Connector) eachDocumentMember(ctx context.Context, col CollectionSpec, fn func(string, connectors.Subject) error) error {
	filter := bson.D{}
	if col.OptOut.Kind == StrategySet {
		notDone := bson.A{}
		for _, f := range connectors.SortedKeys(col.OptOut.Set) {
			notDone = append(notDone, bson.D{{Key: f, Value: bson.D{{Key: "$ne", Value: col.OptOut.Set[f]}}}})
		}
		filter = bson.D{{Key: "$or", Value: notDone}}
	}
	fields := connectors.SortedKeys(col.Match)
	proj := bson.D{}
	for _, f := range fields {
		proj = append(proj, bson.E{Key: f, Value: 1})
	}
	cur, err := c.db.Collection(col.Name).Find(ctx, filter, options.Find().SetProjection(proj).SetBatchSize(memberBatch))
	if err != nil {
		return err
	}
	defer func() { _ = cur.Close(ctx) }()
	for cur.Next(ctx) {
		var m connectors.Subject
		for _, f := range fields {
			for _, v := range valuesAt(cur.Current, strings.Split(f, ".")) {
				m.Identities = append(m.Identities, connectors.Identity{Kind: col.Match[f], Value: v})
			}
		}
		if len(m.Identities) == 0 {
			continue
		}
		if err := fn(col.Name, m); err != nil {
			return err
		}
	}
	return cur.Err()
}

// valuesAt returns the identifier values (strings, ObjectIDs, integers) at
// path in doc, looking into arrays on the way and at its end, as a match
// does.
func valuesAt(doc bson.Raw, path []string) []string {
	v, err := doc.LookupErr(path[0])
	if err != nil {
		return nil
	}
	return rawValues(v, path[1:])
}

func rawValues(v bson.RawValue, rest []string) []string {
	switch v.Type {
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			return nil
		}
		var out []string
		for _, el := range vals {
			out = append(out, rawValues(el, rest)...)
		}
		return out
	case bson.TypeEmbeddedDocument:
		if len(rest) == 0 {
			return nil
		}
		return valuesAt(v.Document(), rest)
	}
	if len(rest) > 0 {
		return nil
	}
	if s, ok := scalarString(v); ok {
		return []string{s}
	}
	return nil
}
