// Package mongodb is the connector for data kept in MongoDB or any
// MongoDB-compatible database (FerretDB included). It finds a subject's
// documents by the fields named in each collection's match, exports them,
// erases them (delete, mask or pull from an array), opts the subject out
// (delete, pull, or set fields) and corrects them (set the fields a
// collection's correct names), using only single-collection commands that
// MongoDB and FerretDB v1 both support.
package mongodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/internal/mongocompat"
)

// Type is the connector type name in the connectors file.
const Type = "mongodb"

// Connector reaches one database. It implements connectors.Exporter, Eraser,
// OptOuter, Corrector, Resolver, Scoped, Checker and Discoverer.
type Connector struct {
	name   string
	spec   Spec
	db     *mongo.Database
	client *mongo.Client // owned: closed by Close; nil when shared

	// gate, once known, says whether writes go through FerretDB's lane.
	// It is learnt without holding any lock across the round trip, so an
	// unreachable server delays only the calls that need it, each bounded
	// by its own ctx, never every caller in turn.
	gate atomic.Pointer[mongocompat.Gate]
}

// Factory returns the factory for the mongodb type. Connectors with no uri
// use d.Mongo, the service's own store connection.
func Factory(d connectors.Deps) connectors.Factory {
	return func(ctx context.Context, name string, node *yaml.Node) (connectors.Connector, error) {
		var spec Spec
		if err := connectors.DecodeStrict(node, &spec); err != nil {
			return nil, err
		}
		spec.locate(node)
		spec.masker = d.Mask
		return New(ctx, name, spec, d.Mongo)
	}
}

// New validates spec and returns a connector. With spec.URI empty it uses
// defaultClient; otherwise it opens (lazily) its own client.
func New(ctx context.Context, name string, spec Spec, defaultClient *mongo.Client) (*Connector, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	c := &Connector{name: name, spec: spec}
	client := defaultClient
	if spec.URI != "" {
		var err error
		c.client, err = mongo.Connect(options.Client().ApplyURI(spec.URI))
		if err != nil {
			return nil, connectors.Permanent(fmt.Errorf("connect: %w", err))
		}
		client = c.client
	}
	if client == nil {
		return nil, fmt.Errorf("no uri, and the service's store is not MongoDB: give the connector a uri")
	}
	c.db = client.Database(spec.Database)
	return c, nil
}

// Name implements connectors.Connector.
func (c *Connector) Name() string { return c.name }

// Close disconnects a client the connector opened itself.
func (c *Connector) Close() error {
	if c.client == nil {
		return nil
	}
	return c.client.Disconnect(context.Background())
}

// Handles reports opt-out support only when a collection has opt_out set,
// and correction support only when one has correct.
func (c *Connector) Handles(a connectors.Action) bool {
	switch a {
	case connectors.ActionOptOut:
		return slices.ContainsFunc(c.spec.Collections, func(col CollectionSpec) bool { return col.OptOut != nil })
	case connectors.ActionCorrect:
		return len(c.CorrectFields()) > 0
	}
	return true
}

// CorrectFields implements connectors.Corrector: every field some
// collection's correct names, sorted.
func (c *Connector) CorrectFields() []string {
	var out []string
	for _, col := range c.spec.Collections {
		out = append(out, connectors.SortedKeys(col.Correct)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Correct implements connectors.Corrector: in each collection whose correct
// names a field of s.Corrections, it sets the document fields to the new
// values, as literal values, in the subject's documents that do not hold
// them all yet. Before that it reads those documents' current values, once,
// only to hash them (s.HashValue) for the evidence: they are never
// returned, logged or quoted in an error. A second run finds nothing left
// to change and reports 0 records. A write between the read and the update
// (another system's) may change a document whose value is then missing
// from the hashes.
func (c *Connector) Correct(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	var res connectors.Result
	for _, col := range c.spec.Collections {
		cs := s.CorrectionsFor(connectors.SortedKeys(col.Correct))
		if len(cs) == 0 {
			continue
		}
		kinds, known := connectors.MatchKinds(col.Match, s)
		filter := matchFilter(col.Match, s)
		if filter == nil {
			res.NotSearched(col.Name, kinds)
			continue
		}
		r, err := c.correct(ctx, col, filter, cs, s)
		if err != nil {
			return res, fmt.Errorf("correct %s: %w", col.Name, opaque(err))
		}
		r.MatchKinds, r.KindsKnown = kinds, known
		res.Searched(r)
	}
	return res, nil
}

// correct corrects one collection's documents that filter matches.
func (c *Connector) correct(ctx context.Context, col CollectionSpec, filter bson.D, cs []connectors.Correction, s connectors.Subject) (connectors.CollectionResult, error) {
	r := connectors.CollectionResult{Name: col.Name, Outcome: "corrected"}
	set, proj, notDone := bson.D{}, bson.D{}, bson.A{}
	for _, x := range cs {
		doc := col.Correct[x.Field]
		set = append(set, bson.E{Key: doc, Value: x.Value})
		proj = append(proj, bson.E{Key: doc, Value: 1})
		notDone = append(notDone, bson.D{{Key: doc, Value: bson.D{{Key: "$ne", Value: x.Value}}}})
	}
	todo := and(filter, bson.D{{Key: "$or", Value: notDone}})
	coll := c.db.Collection(col.Name)
	gate, err := c.writeGate(ctx)
	if err != nil {
		return r, err
	}
	defer gate.Enter()()
	old := make([]map[string]bool, len(cs))
	for i := range old {
		old[i] = map[string]bool{}
	}
	cur, err := coll.Find(ctx, todo, options.Find().SetProjection(proj).SetBatchSize(exportBatch))
	if err != nil {
		return r, err
	}
	for cur.Next(ctx) {
		for i, x := range cs {
			v, err := cur.Current.LookupErr(strings.Split(col.Correct[x.Field], ".")...)
			if err != nil {
				continue // absent: nothing overwritten
			}
			if str, ok := oldValue(v); ok && str != x.Value {
				old[i][s.HashValue(x.Field, str)] = true
			}
		}
	}
	err = cur.Err()
	_ = cur.Close(ctx)
	if err != nil {
		return r, err
	}
	u, err := coll.UpdateMany(ctx, todo, bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return r, err
	}
	r.Records = u.ModifiedCount
	for i, x := range cs {
		ch := connectors.FieldChange{Field: x.Field, New: s.HashValue(x.Field, x.Value)}
		for h := range old[i] {
			ch.Old = append(ch.Old, h)
		}
		slices.Sort(ch.Old)
		r.Changes = append(r.Changes, ch)
	}
	return r, nil
}

// oldValue renders a value a correction overwrites, for its hash: a string
// as it is, anything else as its relaxed Extended JSON (so 42 and "42"
// differ); null and undefined are no value.
func oldValue(v bson.RawValue) (string, bool) {
	switch v.Type {
	case bson.TypeString:
		return v.StringValue(), true
	case bson.TypeNull, bson.TypeUndefined:
		return "", false
	}
	return v.String(), true
}

// opaque returns err without what a server's message may quote of the
// documents (a duplicate key, a document that failed validation): its
// code names only. Other errors (network, context) pass unchanged.
func opaque(err error) error {
	var we mongo.WriteException
	if errors.As(err, &we) {
		var codes []string
		for _, e := range we.WriteErrors {
			codes = append(codes, strconv.Itoa(e.Code))
		}
		if we.WriteConcernError != nil {
			codes = append(codes, we.WriteConcernError.Name)
		}
		return fmt.Errorf("write refused by the server (codes %s)", strings.Join(codes, ", "))
	}
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return fmt.Errorf("command refused by the server: %s (code %d)", ce.Name, ce.Code)
	}
	return err
}

// Resolve returns the identities that matching documents provide.
func (c *Connector) Resolve(ctx context.Context, s connectors.Subject) ([]connectors.Identity, error) {
	var out []connectors.Identity
	for _, col := range c.spec.Collections {
		if len(col.Provide) == 0 {
			continue
		}
		filter := matchFilter(col.Match, s)
		if filter == nil {
			continue
		}
		proj := bson.D{}
		for _, field := range sortedValues(col.Provide) {
			proj = append(proj, bson.E{Key: field, Value: 1})
		}
		cur, err := c.db.Collection(col.Name).Find(ctx, filter, options.Find().SetProjection(proj).SetBatchSize(100))
		if err != nil {
			return nil, fmt.Errorf("resolve in %s: %w", col.Name, err)
		}
		for cur.Next(ctx) {
			for _, kind := range connectors.SortedKeys(col.Provide) {
				v, err := cur.Current.LookupErr(strings.Split(col.Provide[kind], ".")...)
				if err != nil {
					continue
				}
				if str, ok := scalarString(v); ok {
					out = append(out, connectors.Identity{Kind: kind, Value: str, Source: c.name + "/" + col.Name})
				}
			}
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		if err != nil {
			return nil, fmt.Errorf("resolve in %s: %w", col.Name, err)
		}
	}
	return out, nil
}

// exportBatch is how many documents one reply of an export's cursor
// carries: what the connector holds of a person's records at a time.
const exportBatch = 100

// Export writes every matching document, with arrays that matched trimmed to
// the subject's own entries (no other member of a segment is disclosed). A
// collection's records come together, one at a time, in the order the server
// finds them (on MongoDB the order of the index that serves the match, or of
// the collection; on FerretDB the order they were inserted). No order is
// asked for: a sort that no index serves is a blocking sort, which holds
// every matching document in the server's memory (FerretDB sorts every sort
// in memory, in the process running it). So neither side holds more than a
// batch of a person's records, however many there are.
func (c *Connector) Export(ctx context.Context, s connectors.Subject, out connectors.RecordWriter) (connectors.Result, error) {
	var res connectors.Result
	for _, col := range c.spec.Collections {
		kinds, known := connectors.MatchKinds(col.Match, s)
		filter := matchFilter(col.Match, s)
		if filter == nil {
			res.NotSearched(col.Name, kinds)
			continue
		}
		cur, err := c.db.Collection(col.Name).Find(ctx, filter, options.Find().SetBatchSize(exportBatch))
		if err != nil {
			return res, fmt.Errorf("export %s: %w", col.Name, err)
		}
		var n int64
		for cur.Next(ctx) {
			var doc bson.D
			if err := bson.Unmarshal(cur.Current, &doc); err != nil {
				_ = cur.Close(ctx)
				return res, fmt.Errorf("export %s: decode: %w", col.Name, err)
			}
			for field, kind := range col.Match {
				doc = trimArray(doc, strings.Split(field, "."), s.Values(kind))
			}
			rec, err := Record(doc)
			if err != nil {
				_ = cur.Close(ctx)
				return res, fmt.Errorf("export %s: %w", col.Name, err)
			}
			if err := out.WriteRecord(ctx, col.Name, rec); err != nil {
				_ = cur.Close(ctx)
				return res, fmt.Errorf("export %s: %w", col.Name, err)
			}
			n++
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		if err != nil {
			return res, fmt.Errorf("export %s: %w", col.Name, err)
		}
		res.Searched(connectors.CollectionResult{Name: col.Name, Outcome: "exported", Records: n, MatchKinds: kinds, KindsKnown: known})
	}
	return res, nil
}

// Record returns a document as the record an export shows: MongoDB relaxed
// Extended JSON ({"$oid": ...} for an ObjectID, {"$date": ...} for a date),
// keeping the document's field order and its characters as they are (no
// HTML escaping).
func Record(doc bson.D) (json.RawMessage, error) {
	js, err := bson.MarshalExtJSON(doc, false, false)
	if err != nil {
		return nil, fmt.Errorf("render record: %w", err)
	}
	return js, nil
}

// Erase applies each collection's erase strategy. A collection kept on a
// legal basis (retain) is masked when its strategy is mask, and otherwise
// kept whole; either way the result names the basis.
func (c *Connector) Erase(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	var res connectors.Result
	for _, col := range c.spec.Collections {
		kinds, known := connectors.MatchKinds(strategyMatch(col, *col.Erase), s)
		if len(known) == 0 {
			res.NotSearched(col.Name, kinds)
			continue
		}
		r := connectors.CollectionResult{Name: col.Name, MatchKinds: kinds, KindsKnown: known, Basis: col.Retain}
		var err error
		if col.Retain != "" && col.Erase.Kind != StrategyMask {
			r.Outcome = "retained"
			r.Records, err = c.count(ctx, col, s)
		} else {
			r.Outcome, r.Records, err = c.apply(ctx, col, *col.Erase, s)
		}
		if err != nil {
			return res, fmt.Errorf("erase %s: %w", col.Name, err)
		}
		res.Searched(r)
	}
	return res, nil
}

// strategyMatch returns the match fields a strategy finds the subject by:
// a pull looks only in its array; the others use every match field.
func strategyMatch(col CollectionSpec, st Strategy) map[string]string {
	if st.Kind == StrategyPull {
		return map[string]string{st.Field: col.Match[st.Field]}
	}
	return col.Match
}

// count counts the subject's documents in a collection.
func (c *Connector) count(ctx context.Context, col CollectionSpec, s connectors.Subject) (int64, error) {
	filter := matchFilter(col.Match, s)
	if filter == nil {
		return 0, nil
	}
	return c.db.Collection(col.Name).CountDocuments(ctx, filter)
}

// OptOut applies each collection's opt_out strategy; collections without one
// are left alone.
func (c *Connector) OptOut(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	var res connectors.Result
	for _, col := range c.spec.Collections {
		if col.OptOut == nil {
			continue
		}
		kinds, known := connectors.MatchKinds(strategyMatch(col, *col.OptOut), s)
		if len(known) == 0 {
			res.NotSearched(col.Name, kinds)
			continue
		}
		outcome, n, err := c.apply(ctx, col, *col.OptOut, s)
		if err != nil {
			return res, fmt.Errorf("opt out %s: %w", col.Name, err)
		}
		res.Searched(connectors.CollectionResult{Name: col.Name, Outcome: outcome, Records: n, MatchKinds: kinds, KindsKnown: known})
	}
	return res, nil
}

// writeGate learns whether the target is FerretDB, whose writes must go
// through the process's write lane (see internal/mongocompat). Until one
// detection succeeds, every call asks the server itself, under its own ctx
// and holding no lock: callers never queue behind one another's round trip,
// and a server that comes back is detected by the next call.
func (c *Connector) writeGate(ctx context.Context) (mongocompat.Gate, error) {
	if g := c.gate.Load(); g != nil {
		return *g, nil
	}
	g, err := mongocompat.Detect(ctx, c.db)
	if err != nil {
		return g, err
	}
	c.gate.CompareAndSwap(nil, &g) // concurrent detections agree; keep the first
	return g, nil
}

// apply runs one strategy and returns its outcome word and how many documents
// changed. Every strategy matches only documents it would still change, so a
// second run changes, and reports, nothing.
func (c *Connector) apply(ctx context.Context, col CollectionSpec, st Strategy, s connectors.Subject) (string, int64, error) {
	gate, err := c.writeGate(ctx)
	if err != nil {
		return "", 0, err
	}
	defer gate.Enter()()
	coll := c.db.Collection(col.Name)
	switch st.Kind {
	case StrategyDelete:
		filter := matchFilter(col.Match, s)
		if filter == nil {
			return "deleted", 0, nil
		}
		r, err := coll.DeleteMany(ctx, filter)
		if err != nil {
			return "", 0, err
		}
		return "deleted", r.DeletedCount, nil
	case StrategyMask:
		filter := matchFilter(col.Match, s)
		if filter == nil {
			return "masked", 0, nil
		}
		if !constantMasks(col.Mask) {
			n, err := c.maskEach(ctx, coll, filter, col.Mask)
			if err != nil {
				return "", 0, err
			}
			return "masked", n, nil
		}
		set := bson.D{}
		for _, f := range col.Mask {
			set = append(set, bson.E{Key: f.Field, Value: f.Strategy.Value})
		}
		n, err := setWhereNotSet(ctx, coll, filter, set)
		if err != nil {
			return "", 0, err
		}
		return "masked", n, nil
	case StrategyPull:
		vals := variants(s.Values(col.Match[st.Field]))
		if len(vals) == 0 {
			return "pulled", 0, nil
		}
		// $pullAll rather than $pull with $in: FerretDB v1 ignores the latter.
		r, err := coll.UpdateMany(ctx,
			bson.D{{Key: st.Field, Value: bson.D{{Key: "$in", Value: vals}}}},
			bson.D{{Key: "$pullAll", Value: bson.D{{Key: st.Field, Value: vals}}}})
		if err != nil {
			return "", 0, err
		}
		return "pulled", r.ModifiedCount, nil
	case StrategySet:
		filter := matchFilter(col.Match, s)
		if filter == nil {
			return "set", 0, nil
		}
		set := bson.D{}
		for _, f := range connectors.SortedKeys(st.Set) {
			set = append(set, bson.E{Key: f, Value: st.Set[f]})
		}
		n, err := setWhereNotSet(ctx, coll, filter, set)
		if err != nil {
			return "", 0, err
		}
		return "set", n, nil
	}
	return "", 0, connectors.Permanent(fmt.Errorf("unknown strategy %q", st.Kind))
}

// setWhereNotSet sets the fields of set in the documents filter matches
// that do not hold all of them yet, and returns how many it changed.
func setWhereNotSet(ctx context.Context, coll *mongo.Collection, filter, set bson.D) (int64, error) {
	notDone := bson.A{}
	for _, e := range set {
		notDone = append(notDone, bson.D{{Key: e.Key, Value: bson.D{{Key: "$ne", Value: e.Value}}}})
	}
	r, err := coll.UpdateMany(ctx, and(filter, bson.D{{Key: "$or", Value: notDone}}), bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return 0, err
	}
	return r.ModifiedCount, nil
}

// matchFilter returns the filter for the subject's documents: any match field
// holding any of the subject's identities of its kind. It returns nil when
// the subject has no identity of any matched kind.
func matchFilter(match map[string]string, s connectors.Subject) bson.D {
	var or bson.A
	for _, field := range connectors.SortedKeys(match) {
		vals := variants(s.Values(match[field]))
		if len(vals) == 0 {
			continue
		}
		or = append(or, bson.D{{Key: field, Value: bson.D{{Key: "$in", Value: vals}}}})
	}
	switch len(or) {
	case 0:
		return nil
	case 1:
		return or[0].(bson.D)
	}
	return bson.D{{Key: "$or", Value: or}}
}

func and(a, b bson.D) bson.D {
	return bson.D{{Key: "$and", Value: bson.A{a, b}}}
}

// variants returns each value as a string and, where it is the canonical
// form of one, as an ObjectID or an integer, so ids stored in those types
// match too. Only canonical forms: "007" must not match another person's 7.
func variants(vals []string) bson.A {
	var out bson.A
	for _, v := range vals {
		out = append(out, v)
		if oid, err := bson.ObjectIDFromHex(v); err == nil && oid.Hex() == v {
			out = append(out, oid)
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && strconv.FormatInt(n, 10) == v {
			out = append(out, n)
		}
	}
	return out
}

// scalarString renders an identifier value found in a document.
func scalarString(v bson.RawValue) (string, bool) {
	switch v.Type {
	case bson.TypeString:
		return v.StringValue(), v.StringValue() != ""
	case bson.TypeObjectID:
		return v.ObjectID().Hex(), true
	case bson.TypeInt32:
		return strconv.FormatInt(int64(v.Int32()), 10), true
	case bson.TypeInt64:
		return strconv.FormatInt(v.Int64(), 10), true
	}
	return "", false
}

// trimArray keeps, in the array at path, only the elements that are one of
// keep or, for an array of subdocuments, that hold one at the rest of path;
// other values are left as they are.
func trimArray(doc bson.D, path []string, keep []string) bson.D {
	for i := range doc {
		if doc[i].Key != path[0] {
			continue
		}
		switch v := doc[i].Value.(type) {
		case bson.D:
			if len(path) > 1 {
				doc[i].Value = trimArray(v, path[1:], keep)
			}
		case bson.A:
			kept := bson.A{}
			for _, el := range v {
				if len(path) == 1 {
					if containsValue(keep, el) {
						kept = append(kept, el)
					}
				} else if sub, ok := el.(bson.D); ok && holds(sub, path[1:], keep) {
					// An array of subdocuments matched by a dotted path
					// (members.email): keep the subject's elements only.
					kept = append(kept, trimArray(sub, path[1:], keep))
				}
			}
			doc[i].Value = kept
		}
	}
	return doc
}

// holds reports whether the value at path in doc, or an element of an array
// on the way, is one of keep.
func holds(doc bson.D, path []string, keep []string) bool {
	for _, e := range doc {
		if e.Key == path[0] {
			return valueHolds(e.Value, path[1:], keep)
		}
	}
	return false
}

func valueHolds(v any, path []string, keep []string) bool {
	switch x := v.(type) {
	case bson.A:
		for _, el := range x {
			if valueHolds(el, path, keep) {
				return true
			}
		}
		return false
	case bson.D:
		return len(path) > 0 && holds(x, path, keep)
	}
	return len(path) == 0 && containsValue(keep, v)
}

func containsValue(keep []string, el any) bool {
	var s string
	switch x := el.(type) {
	case string:
		s = x
	case bson.ObjectID:
		s = x.Hex()
	case int32:
		s = strconv.FormatInt(int64(x), 10)
	case int64:
		s = strconv.FormatInt(x, 10)
	default:
		return false
	}
	for _, k := range keep {
		if k == s {
			return true
		}
	}
	return false
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}
