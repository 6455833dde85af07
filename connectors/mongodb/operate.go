package mongodb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/auth"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/discover"
	"github.com/dsar-project/dsar/internal/mongocompat"
)

// fieldCheckTimeout bounds the search for one match field in a collection
// (a query no index may serve).
const fieldCheckTimeout = 10 * time.Second

// Check implements connectors.Checker. In order: the server answers a ping
// ("reachable") with the credentials accepted; each collection of the file
// exists in the database; in each, some document holds each match and
// provide field (a field no document holds is likely misspelt); and the
// connected user holds, per collection, the privileges the configured
// actions use: find (export, resolution, counting what is kept), update
// (mask, pull, set) and remove (delete).
//
// Privileges come from connectionStatus with showPrivileges. A server
// that lists none (FerretDB), or a user not allowed to ask, leaves those
// checks unknown (connectors.ErrNotChecked), never passed. A MongoDB on
// which no one is authenticated yet collections can be listed runs without
// access control, so every privilege is held.
func (c *Connector) Check(ctx context.Context) []connectors.Check {
	var out []connectors.Check
	add := func(what string, err error) { out = append(out, connectors.Check{What: what, Err: err}) }

	err := c.db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
	if errors.As(err, new(*auth.Error)) || hasCode(err, codeAuthenticationFailed) {
		add("reachable", nil)
		add("credentials accepted", fmt.Errorf("refused: %w", err))
		return out
	}
	if err != nil {
		add("reachable", err)
		return out
	}
	add("reachable", nil)
	add("credentials accepted", nil)

	names, listErr := c.collectionNames(ctx)
	for _, col := range c.spec.Collections {
		switch {
		case listErr != nil:
			add("collection "+col.Name, fmt.Errorf("%w: cannot list the collections of database %q: %w", connectors.ErrNotChecked, c.db.Name(), listErr))
		case !slices.Contains(names, col.Name):
			add("collection "+col.Name, fmt.Errorf("database %q has no collection %q", c.db.Name(), col.Name))
			continue
		default:
			add("collection "+col.Name, nil)
		}
		for _, f := range checkedFields(col) {
			add(fmt.Sprintf("field %s in %s", f, col.Name), c.checkField(ctx, col.Name, f))
		}
	}

	privs, err := c.privileges(ctx, listErr == nil)
	for _, col := range c.spec.Collections {
		for _, action := range neededActions(col) {
			what := fmt.Sprintf("permission to %s in %s", action, col.Name)
			if err != nil {
				add(what, err)
				continue
			}
			add(what, privs.allow(c.db.Name(), col.Name, action))
		}
	}
	return out
}

// codeAuthenticationFailed is the server's error code for refused
// credentials.
const codeAuthenticationFailed = 18

func hasCode(err error, code int) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(code)
}

// collectionNames lists the database's collections (those the user may
// see), sorted, without system collections.
func (c *Connector) collectionNames(ctx context.Context) ([]string, error) {
	names, err := c.db.ListCollectionNames(ctx, bson.D{}, options.ListCollections().SetAuthorizedCollections(true))
	if err != nil {
		return nil, err
	}
	names = slices.DeleteFunc(names, func(n string) bool { return strings.HasPrefix(n, "system.") })
	sort.Strings(names)
	return names, nil
}

// checkedFields returns the fields Check looks for in a collection: its
// match fields and the fields its provide reads, sorted.
func checkedFields(col CollectionSpec) []string {
	seen := map[string]bool{}
	for f := range col.Match {
		seen[f] = true
	}
	for _, f := range col.Provide {
		seen[f] = true
	}
	return connectors.SortedKeys(seen)
}

// checkField fails when no document of coll holds field; it is unknown when
// the collection is empty or the search takes too long.
func (c *Connector) checkField(ctx context.Context, coll, field string) error {
	ctx, cancel := context.WithTimeout(ctx, fieldCheckTimeout)
	defer cancel()
	one := options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})
	err := c.db.Collection(coll).FindOne(ctx, bson.D{{Key: field, Value: bson.D{{Key: "$exists", Value: true}}}}, one).Err()
	if err == nil {
		return nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		if mongo.IsTimeout(err) {
			return fmt.Errorf("%w: no document with it found within %s", connectors.ErrNotChecked, fieldCheckTimeout)
		}
		return fmt.Errorf("%w: %w", connectors.ErrNotChecked, err)
	}
	err = c.db.Collection(coll).FindOne(ctx, bson.D{}, one).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("%w: the collection is empty", connectors.ErrNotChecked)
	}
	return fmt.Errorf("no document of %s has a field %q (misspelt?)", coll, field)
}

// neededActions returns the MongoDB privilege actions the configured
// actions of a collection use, in a fixed order.
func neededActions(col CollectionSpec) []string {
	need := map[string]bool{"find": true} // export, resolve, counting what is retained
	for _, st := range []*Strategy{col.Erase, col.OptOut} {
		if st == nil {
			continue
		}
		switch {
		case st == col.Erase && col.Retain != "" && st.Kind != StrategyMask:
			// kept whole: only counted
		case st.Kind == StrategyDelete:
			need["remove"] = true
		default:
			need["update"] = true
		}
	}
	if len(col.Correct) > 0 {
		need["update"] = true // correct sets the fields
	}
	var out []string
	for _, a := range []string{"find", "update", "remove"} {
		if need[a] {
			out = append(out, a)
		}
	}
	return out
}

// privileges are what connectionStatus says the connected users may do;
// open means access control is off.
type privileges struct {
	open bool
	list []privilege
}

type privilege struct {
	Resource struct {
		DB          *string `bson:"db"`
		Collection  *string `bson:"collection"`
		AnyResource bool    `bson:"anyResource"`
	} `bson:"resource"`
	Actions []string `bson:"actions"`
}

// privileges asks the server what the connected users may do. listed says
// the collections could be listed, which on MongoDB with no one
// authenticated means access control is off. Its error wraps
// connectors.ErrNotChecked.
func (c *Connector) privileges(ctx context.Context, listed bool) (privileges, error) {
	g, err := mongocompat.Detect(ctx, c.db)
	if err != nil {
		return privileges{}, fmt.Errorf("%w: %w", connectors.ErrNotChecked, err)
	}
	if g.FerretDB() {
		return privileges{}, fmt.Errorf("%w: server does not say (FerretDB reports no privileges)", connectors.ErrNotChecked)
	}
	var status struct {
		AuthInfo struct {
			Users      []bson.Raw  `bson:"authenticatedUsers"`
			Privileges []privilege `bson:"authenticatedUserPrivileges"`
		} `bson:"authInfo"`
	}
	raw, err := c.db.Client().Database("admin").RunCommand(ctx, bson.D{{Key: "connectionStatus", Value: 1}, {Key: "showPrivileges", Value: true}}).Raw()
	if err != nil {
		return privileges{}, fmt.Errorf("%w: server does not say: connectionStatus: %w", connectors.ErrNotChecked, err)
	}
	if _, err := raw.LookupErr("authInfo", "authenticatedUserPrivileges"); err != nil {
		return privileges{}, fmt.Errorf("%w: server does not say (connectionStatus lists no privileges)", connectors.ErrNotChecked)
	}
	if err := bson.Unmarshal(raw, &status); err != nil {
		return privileges{}, fmt.Errorf("%w: connectionStatus: %w", connectors.ErrNotChecked, err)
	}
	if len(status.AuthInfo.Users) == 0 {
		if listed {
			return privileges{open: true}, nil
		}
		return privileges{}, fmt.Errorf("%w: not authenticated, and the server does not say what is allowed", connectors.ErrNotChecked)
	}
	return privileges{list: status.AuthInfo.Privileges}, nil
}

// allow returns nil when the privileges grant action on db.coll.
func (p privileges) allow(db, coll, action string) error {
	if p.open {
		return nil
	}
	for _, pr := range p.list {
		r := pr.Resource
		if !r.AnyResource {
			if r.DB == nil || r.Collection == nil {
				continue // cluster and other resources
			}
			if (*r.DB != "" && *r.DB != db) || (*r.Collection != "" && *r.Collection != coll) {
				continue
			}
		}
		if slices.Contains(pr.Actions, action) || slices.Contains(pr.Actions, "anyAction") {
			return nil
		}
	}
	return fmt.Errorf("the connected user has no %s privilege on %s.%s", action, db, coll)
}

// Discover implements connectors.Discoverer. It reads, from every
// collection of the database but system ones, in name order, the first
// opts.Sample documents in the server's natural order (FerretDB has no
// $sample), and looks at every string, ObjectID and integer value, in
// sub-documents and arrays too (a dotted path names it; an array's values
// share its path), down to 8 levels. A field is covered when the
// collection's entry names it, or a field it lies in, in match, provide or
// mask.
func (c *Connector) Discover(ctx context.Context, opts connectors.DiscoverOptions, found func(connectors.Finding)) (connectors.Scanned, error) {
	var scanned connectors.Scanned
	names, err := c.collectionNames(ctx)
	if err != nil {
		return scanned, fmt.Errorf("list collections: %w", err)
	}
	configured := map[string]CollectionSpec{}
	for _, col := range c.spec.Collections {
		configured[col.Name] = col
	}
	if opts.Progress != nil {
		opts.Progress(0, len(names))
	}
	n := opts.SampleSize()
	for i, name := range names {
		var tally discover.Tally
		cur, err := c.db.Collection(name).Find(ctx, bson.D{}, options.Find().SetLimit(int64(n)).SetBatchSize(int32(min(n, exportBatch))))
		if err != nil {
			return scanned, fmt.Errorf("sample %s: %w", name, err)
		}
		for cur.Next(ctx) {
			tally.Row()
			walk(&tally, "", cur.Current, 0)
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		if err != nil {
			return scanned, fmt.Errorf("sample %s: %w", name, err)
		}
		scanned.Collections++
		scanned.Documents += tally.Rows()
		col, isConfigured := configured[name]
		for _, f := range tally.Findings(name, isConfigured, discover.CoveredBy(coveredFields(col)...)) {
			found(f)
		}
		if opts.Progress != nil {
			opts.Progress(i+1, len(names))
		}
	}
	return scanned, nil
}

// coveredFields are the fields of a collection's entry that Discover takes
// as covered.
func coveredFields(col CollectionSpec) []string {
	var out []string
	for _, fm := range col.Mask {
		out = append(out, fm.Field)
	}
	for f := range col.Match {
		out = append(out, f)
	}
	for _, f := range col.Provide {
		out = append(out, f)
	}
	return out
}

// maxDepth bounds how deep Discover looks into sub-documents and arrays.
const maxDepth = 8

// walk hands every identifier-like value of doc to t, named by its path.
func walk(t *discover.Tally, prefix string, doc bson.Raw, depth int) {
	elems, err := doc.Elements()
	if err != nil {
		return
	}
	for _, e := range elems {
		path := e.Key()
		if prefix != "" {
			path = prefix + "." + path
		}
		walkValue(t, path, e.Value(), depth)
	}
}

func walkValue(t *discover.Tally, path string, v bson.RawValue, depth int) {
	if depth >= maxDepth {
		return
	}
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		walk(t, path, v.Document(), depth+1)
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			return
		}
		for _, el := range vals {
			walkValue(t, path, el, depth+1)
		}
	default:
		if s, ok := scalarString(v); ok {
			t.Value(path, s)
		}
	}
}
