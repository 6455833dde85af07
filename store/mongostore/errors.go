package mongostore

import (
	"errors"
	"fmt"
	"syscall"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/dsar-project/dsar/dsr"
)

// mongoOutOfDiskSpace is MongoDB's OutOfDiskSpace error code.
const mongoOutOfDiskSpace = 14031

// fullMessages are what a full disk reads like in a store's error message:
// SQLite's SQLITE_FULL (through FerretDB) and the operating system's
// ENOSPC, as the server passes them on.
var fullMessages = []string{"database or disk is full", "no space left on device"}

// StorageError returns err marked with dsr.ErrStorageFull when it says the
// store's disk is full (MongoDB's OutOfDiskSpace, SQLite's SQLITE_FULL
// through FerretDB, ENOSPC), with dsr.ErrStoreUnavailable when the store
// cannot serve it now (see transient: an election, a lost connection), else
// err unchanged: the one place where either is recognised. nil stays nil.
func StorageError(err error) error {
	if err == nil || errors.Is(err, dsr.ErrStorageFull) {
		return err
	}
	if err = unavailable(err); errors.Is(err, dsr.ErrStoreUnavailable) {
		return err
	}
	full := errors.Is(err, syscall.ENOSPC)
	var se mongo.ServerError
	if !full && errors.As(err, &se) {
		full = se.HasErrorCode(mongoOutOfDiskSpace)
		for _, m := range fullMessages {
			full = full || se.HasErrorMessage(m)
		}
	}
	if !full {
		return err
	}
	return fmt.Errorf("%w: %w", dsr.ErrStorageFull, err)
}

// onlyDuplicates reports whether every write error of err is a duplicate key.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 {
			return false
		}
	}
	return true
}
