package store

import (
	"fmt"
	"strconv"
	"strings"
)

// ExportRecordKey is an export record's key for [Copier] (a record has no
// _id of its own on SQLite, and an ObjectID of no meaning on MongoDB): its
// job id, ':' and its seq zero-padded to 12 digits. Every driver orders
// export records by job id, then seq, whatever their key's text: a job id
// that is a prefix of another sorts first.
func ExportRecordKey(jobID string, seq int64) string {
	return fmt.Sprintf("%s:%012d", jobID, seq)
}

// ParseExportRecordKey splits an export record's key (see
// [ExportRecordKey]) into its job id and seq. Job ids contain ':', so the
// seq is what follows the last one.
func ParseExportRecordKey(key string) (jobID string, seq int64, err error) {
	i := strings.LastIndexByte(key, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("export record key %q: no ':'", key)
	}
	seq, err = strconv.ParseInt(key[i+1:], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("export record key %q: bad seq: %w", key, err)
	}
	return key[:i], seq, nil
}
