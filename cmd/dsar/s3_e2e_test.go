package main

import (
	"bytes"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/internal/testenv"
)

// TestExportsInBucket runs dev --demo with exports kept in an S3-compatible
// bucket (over TLS, its CA given): an access request's export is written
// there, encrypted, not into the store, and downloads whole; a bucket that
// does not exist stops the start with the setting named.
func TestExportsInBucket(t *testing.T) {
	t.Parallel()
	if testenv.RealMongo() {
		t.Skip("checks the embedded store's file")
	}
	r := testenv.RedisServer(t)
	s3 := testenv.StartS3(t, "exports")
	dir := t.TempDir()
	env := append(baseEnv(t, dir, r.Addr, testenv.Queue(t, r), testenv.Name("e2e")),
		"DSAR_EXPORT_S3_ENDPOINT="+s3.Endpoint, "DSAR_EXPORT_S3_CA_FILE="+s3.CAFile,
		"DSAR_EXPORT_S3_ACCESS_KEY_ID=dsar", "DSAR_EXPORT_S3_SECRET_ACCESS_KEY=secret-of-dsar")

	out, code := exitOf(t, append(env, "DSAR_EXPORT_S3_BUCKET=nope"), "dev", "--demo")
	if code != 1 || !strings.Contains(out, "DSAR_EXPORT_S3_ENDPOINT") || !strings.Contains(out, "no such bucket") {
		t.Fatalf("dev with a bucket that does not exist: exit %d\n%s", code, out)
	}

	p := startDSAR(t, append(env, "DSAR_EXPORT_S3_BUCKET=exports/dsar"), "dev", "--demo")
	access := p.file("access", "gdpr", "ada@example.com")
	files := p.export(access.ID)
	if got := records(t, files, "shop/orders.json"); len(got) != 2 {
		t.Errorf("the export from the bucket has %d orders, want 2", len(got))
	}
	objects := s3.Objects(t, "exports", "dsar/exports/"+access.ID+"/")
	if len(objects) == 0 {
		t.Fatal("no export object in the bucket")
	}
	for name, body := range objects {
		if bytes.Contains(body, []byte("ada@example.com")) || bytes.Contains(body, []byte("orders")) {
			t.Errorf("object %s holds the export in clear", name)
		}
	}
	p.stop()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, embeddedStoreFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM export_records`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the store holds %d export records (%v); want none, the bucket has them", n, err)
	}
}
