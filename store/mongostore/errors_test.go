package mongostore_test

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store/mongostore"
)

func TestStorageError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		full bool
	}{
		{name: "nil", err: nil},
		{name: "other", err: errors.New("connection refused")},
		{name: "other server error", err: mongo.CommandError{Code: 1, Message: "unable to open database file (14)"}},
		{name: "MongoDB OutOfDiskSpace", err: fmt.Errorf("insert request: %w", mongo.CommandError{Code: 14031, Message: "out of disk space"}), full: true},
		{name: "SQLite through FerretDB", err: fmt.Errorf("insert request: %w", mongo.CommandError{Code: 1, Message: "database or disk is full (13)"}), full: true},
		{name: "write exception", err: mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: 1, Message: "sqlite: database or disk is full"}}}, full: true},
		{name: "one document of a bulk insert", err: fmt.Errorf("insert request: %w", mongo.BulkWriteError{WriteError: mongo.WriteError{Code: 1, Message: "database or disk is full (13)"}}), full: true},
		{name: "another error of a bulk insert", err: fmt.Errorf("insert request: %w", mongo.BulkWriteError{WriteError: mongo.WriteError{Code: 11000, Message: "duplicate key"}})},
		{name: "ENOSPC from the server", err: mongo.CommandError{Code: 1, Message: "write /data/x: no space left on device"}, full: true},
		{name: "ENOSPC locally", err: &fs.PathError{Op: "write", Path: "/data/x", Err: syscall.ENOSPC}, full: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mongostore.StorageError(tc.err)
			if full := errors.Is(got, dsr.ErrStorageFull); full != tc.full {
				t.Errorf("errors.Is(StorageError(%v), ErrStorageFull) = %v, want %v", tc.err, full, tc.full)
			}
			if tc.err != nil && !strings.Contains(got.Error(), tc.err.Error()) {
				t.Errorf("StorageError(%v) = %v: lost the cause", tc.err, got)
			}
			if tc.err == nil && got != nil {
				t.Errorf("StorageError(nil) = %v", got)
			}
		})
	}
}
