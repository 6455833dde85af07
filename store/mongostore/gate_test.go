package mongostore

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/mongocompat"
)

// TestCollectionLanesItsWrites checks which of a collection's methods take
// the FerretDB write lane: the conditional writes do, inserts, reads and
// the two writes named apart do not. It needs no server: the lane is taken
// before the command is sent (here, to nowhere, under a cancelled context).
func TestCollectionLanesItsWrites(t *testing.T) {
	t.Parallel()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1").SetServerSelectionTimeout(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f, u := bson.D{{Key: "_id", Value: "x"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: 1}}}}
	tests := []struct {
		name  string
		call  func(c *collection)
		laned bool
	}{
		{"UpdateOne", func(c *collection) { _, _ = c.UpdateOne(ctx, f, u) }, true},
		{"UpdateMany", func(c *collection) { _, _ = c.UpdateMany(ctx, f, u) }, true},
		{"BulkWrite", func(c *collection) {
			_, _ = c.BulkWrite(ctx, []mongo.WriteModel{mongo.NewUpdateOneModel().SetFilter(f).SetUpdate(u)})
		}, true},
		{"FindOneAndUpdate", func(c *collection) { _ = c.FindOneAndUpdate(ctx, f, u).Err() }, true},
		{"DeleteMany", func(c *collection) { _, _ = c.DeleteMany(ctx, f) }, true},
		{"InsertOne", func(c *collection) { _, _ = c.InsertOne(ctx, f) }, false},
		{"InsertMany", func(c *collection) { _, _ = c.InsertMany(ctx, []any{f}) }, false},
		{"DeleteByIDs", func(c *collection) { _, _ = c.DeleteByIDs(ctx, []string{"x"}) }, false},
		{"Touch", func(c *collection) { _, _ = c.Touch(ctx, "x", time.Now()) }, false},
		{"Find", func(c *collection) { _, _ = c.Find(ctx, f) }, false},
		{"FindOne", func(c *collection) { _ = c.FindOne(ctx, f).Err() }, false},
		{"CountDocuments", func(c *collection) { _, _ = c.CountDocuments(ctx, f) }, false},
		{"Aggregate", func(c *collection) { _, _ = c.Aggregate(ctx, bson.A{}) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entered, left := 0, 0
			c := &collection{c: client.Database("lane").Collection("lane"), lane: func() func() {
				entered++
				return func() { left++ }
			}}
			tt.call(c)
			want := 0
			if tt.laned {
				want = 1
			}
			if entered != want || left != want {
				t.Errorf("lane entered %d, left %d times; want %d", entered, left, want)
			}
		})
	}
}

// TestUnreachableStoreIsUnavailable checks that every operation of a
// collection, read or write, fails with dsr.ErrStoreUnavailable when no
// server can be selected (a replica set without a primary looks the same
// to the driver), so the API answers 503 store-unavailable, never 500.
func TestUnreachableStoreIsUnavailable(t *testing.T) {
	t.Parallel()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1/?connectTimeoutMS=100").SetServerSelectionTimeout(50 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	ctx := t.Context()
	c := newCollection(client.Database("gone"), "gone", &mongocompat.Gate{})
	f, u := bson.D{{Key: "_id", Value: "x"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: 1}}}}
	tests := []struct {
		name string
		call func() error
	}{
		{"InsertOne", func() error { _, err := c.InsertOne(ctx, f); return err }},
		{"InsertMany", func() error { _, err := c.InsertMany(ctx, []any{f}); return err }},
		{"UpdateOne", func() error { _, err := c.UpdateOne(ctx, f, u); return err }},
		{"UpdateMany", func() error { _, err := c.UpdateMany(ctx, f, u); return err }},
		{"BulkWrite", func() error {
			_, err := c.BulkWrite(ctx, []mongo.WriteModel{mongo.NewUpdateOneModel().SetFilter(f).SetUpdate(u)})
			return err
		}},
		{"FindOneAndUpdate", func() error { return c.FindOneAndUpdate(ctx, f, u).Err() }},
		{"DeleteMany", func() error { _, err := c.DeleteMany(ctx, f); return err }},
		{"DeleteByIDs", func() error { _, err := c.DeleteByIDs(ctx, []string{"x"}); return err }},
		{"Touch", func() error { _, err := c.Touch(ctx, "x", time.Now()); return err }},
		{"Find", func() error { _, err := c.Find(ctx, f); return err }},
		{"FindOne", func() error { var v bson.M; return c.FindOne(ctx, f).Decode(&v) }},
		{"CountDocuments", func() error { _, err := c.CountDocuments(ctx, f); return err }},
		{"Aggregate", func() error { _, err := c.Aggregate(ctx, bson.A{}); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, dsr.ErrStoreUnavailable) {
				t.Errorf("%s on an unreachable server: %v, want dsr.ErrStoreUnavailable", tt.name, err)
			}
		})
	}
}

// TestNoWriteBypassesTheLane checks that no file of the package but
// gate.go reaches a *mongo.Collection, so every write goes through
// [collection] and its lane.
func TestNoWriteBypassesTheLane(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if name == "gate.go" || strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			// mongo.Collection, or db.Collection(name).
			if sel.Sel.Name == "Collection" {
				t.Errorf("%s: reaches a *mongo.Collection: use the Store's collection fields (gate.go)", fset.Position(sel.Pos()))
			}
			return true
		})
	}
}
