// Package mongocompat covers what FerretDB v1 does differently from MongoDB
// where correctness depends on it.
//
// FerretDB v1 runs update, findAndModify and delete as a query followed by a
// write of each matched document by _id, outside any transaction: the filter
// is not checked again when the write lands. So two concurrent conditional
// updates ("status is verified -> set in_progress") can both succeed, and a
// write can overwrite one that landed between its read and its write.
// (Measured on v1.24.2: 3 of 8 concurrent transitions of one request
// succeeded.) Inserts are atomic (a duplicate _id fails).
//
// dsar therefore sends every write to FerretDB through one process-wide lane
// ([Gate]), which makes a single dsar process correct, and refuses to run as
// several processes on FerretDB. On MongoDB the gate is open and costs
// nothing.
package mongocompat

import (
	"context"
	"fmt"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// lane serializes this process's writes to FerretDB.
var lane sync.Mutex

// Gate decides whether writes to one server go through the lane.
type Gate struct {
	ferret bool
}

// Detect asks the server behind db what it is (buildInfo).
func Detect(ctx context.Context, db *mongo.Database) (Gate, error) {
	raw, err := db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Raw()
	if err != nil {
		return Gate{}, fmt.Errorf("detect server: %w", err)
	}
	_, isFerret := raw.Lookup("ferretdbVersion").StringValueOK()
	return Gate{ferret: isFerret}, nil
}

// FerretDB reports whether the server is FerretDB.
func (g Gate) FerretDB() bool { return g.ferret }

// Enter waits for the lane when the server is FerretDB; call the returned
// function when the write command has returned.
func (g Gate) Enter() (leave func()) {
	if !g.ferret {
		return func() {}
	}
	lane.Lock()
	return lane.Unlock
}
