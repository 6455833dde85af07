package mongostore_test

import (
	"context"
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
		// unavailable: the store cannot serve it now (dsr.ErrStoreUnavailable).
		unavailable bool
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
		{name: "duplicate key", err: mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: 11000, Message: "E11000 duplicate key"}}}},
		{name: "step-down: not writable primary", err: fmt.Errorf("insert request: %w", mongo.CommandError{Code: 10107, Name: "NotWritablePrimary", Labels: []string{"RetryableWriteError"}}), unavailable: true},
		{name: "step-down: interrupted", err: mongo.CommandError{Code: 11602, Name: "InterruptedDueToReplStateChange"}, unavailable: true},
		{name: "primary stepped down", err: mongo.CommandError{Code: 189, Name: "PrimarySteppedDown"}, unavailable: true},
		{name: "shutting down", err: mongo.CommandError{Code: 91, Name: "ShutdownInProgress"}, unavailable: true},
		{name: "majority not reached in time", err: mongo.WriteException{WriteConcernError: &mongo.WriteConcernError{Code: 64, Name: "WriteConcernFailed"}}, unavailable: true},
		{name: "network error label", err: mongo.CommandError{Code: 0, Message: "connection reset", Labels: []string{"NetworkError"}}, unavailable: true},
		{name: "retryable write label", err: mongo.CommandError{Code: 1, Message: "x", Labels: []string{"RetryableWriteError"}}, unavailable: true},
		{name: "deadline", err: fmt.Errorf("find: %w", context.DeadlineExceeded), unavailable: true},
		{name: "caller gone", err: fmt.Errorf("find: %w", context.Canceled)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mongostore.StorageError(tc.err)
			if full := errors.Is(got, dsr.ErrStorageFull); full != tc.full {
				t.Errorf("errors.Is(StorageError(%v), ErrStorageFull) = %v, want %v", tc.err, full, tc.full)
			}
			if unavailable := errors.Is(got, dsr.ErrStoreUnavailable); unavailable != tc.unavailable {
				t.Errorf("errors.Is(StorageError(%v), ErrStoreUnavailable) = %v, want %v", tc.err, unavailable, tc.unavailable)
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
