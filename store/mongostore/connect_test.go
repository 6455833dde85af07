package mongostore_test

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/dsar-project/dsar/store/mongostore"
)

// TestClientOptions checks the settings dsar's store connects with: a
// write acknowledged only once journaled on a majority, reads from the
// primary, retryable writes and reads, unless the URI says otherwise.
func TestClientOptions(t *testing.T) {
	tests := []struct {
		name      string
		uri       string
		w         any
		journal   bool
		primary   bool
		selection time.Duration
		retry     bool
	}{
		{"defaults", "mongodb://db1,db2,db3/?replicaSet=rs0", writeconcern.WCMajority, true, true, mongostore.ServerSelectionTimeout, true},
		{"the URI's write concern wins", "mongodb://db/?w=1&journal=false", 1, false, true, mongostore.ServerSelectionTimeout, true},
		{"the URI's read preference wins", "mongodb://db/?readPreference=secondaryPreferred", writeconcern.WCMajority, true, false, mongostore.ServerSelectionTimeout, true},
		{"the URI's selection timeout wins", "mongodb://db/?serverSelectionTimeoutMS=500", writeconcern.WCMajority, true, true, 500 * time.Millisecond, true},
		{"the URI's retryWrites wins", "mongodb://db/?retryWrites=false", writeconcern.WCMajority, true, true, mongostore.ServerSelectionTimeout, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := mongostore.ClientOptions(tt.uri, "dsar-test")
			if err := opts.Validate(); err != nil {
				t.Fatal(err)
			}
			wc := opts.WriteConcern
			if wc == nil || wc.W != tt.w || wc.Journal == nil || *wc.Journal != tt.journal {
				t.Errorf("write concern %+v, want w=%v journal=%v", wc, tt.w, tt.journal)
			}
			if primary := opts.ReadPreference != nil && opts.ReadPreference.Mode() == readpref.PrimaryMode; primary != tt.primary {
				t.Errorf("read preference %v, want primary: %v", opts.ReadPreference, tt.primary)
			}
			if opts.ServerSelectionTimeout == nil || *opts.ServerSelectionTimeout != tt.selection {
				t.Errorf("server selection timeout %v, want %v", opts.ServerSelectionTimeout, tt.selection)
			}
			if retry := opts.RetryWrites == nil || *opts.RetryWrites; retry != tt.retry {
				t.Errorf("retryable writes %v, want %v", retry, tt.retry)
			}
			if opts.AppName == nil || *opts.AppName != "dsar-test" {
				t.Errorf("app name %v", opts.AppName)
			}
		})
	}
}
