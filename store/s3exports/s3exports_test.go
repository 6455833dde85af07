package s3exports_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/store/s3exports"
)

// TestOpen checks the settings a bucket is opened with: each mistake is
// refused with what is wrong, before any object is written.
func TestOpen(t *testing.T) {
	t.Parallel()
	s3 := testenv.StartS3(t, "exports")
	ctx := context.Background()
	tests := []struct {
		name string
		cfg  s3exports.Config
		want string // in the error; "" for none
	}{
		{"a bucket", s3exports.Config{Endpoint: s3.Endpoint, CAFile: s3.CAFile, Bucket: "exports", AccessKeyID: "id", SecretAccessKey: "secret"}, ""},
		{"a bucket and a prefix", s3exports.Config{Endpoint: s3.Endpoint, CAFile: s3.CAFile, Bucket: "exports/dsar/prod", AccessKeyID: "id", SecretAccessKey: "secret"}, ""},
		{"no such bucket", s3exports.Config{Endpoint: s3.Endpoint, CAFile: s3.CAFile, Bucket: "nope", AccessKeyID: "id", SecretAccessKey: "secret"}, "no such bucket"},
		{"no bucket", s3exports.Config{Endpoint: s3.Endpoint, CAFile: s3.CAFile, AccessKeyID: "id", SecretAccessKey: "secret"}, "s3 bucket: empty"},
		{"http beyond this machine", s3exports.Config{Endpoint: "http://s3.example.com", Bucket: "exports"}, "http only to this machine"},
		{"not a URL", s3exports.Config{Endpoint: "s3.example.com", Bucket: "exports"}, "want https://host[:port]"},
		{"a path", s3exports.Config{Endpoint: "https://s3.example.com/exports", Bucket: "exports"}, "want https://host[:port]"},
		{"credentials in the URL", s3exports.Config{Endpoint: "https://id:secret@s3.example.com", Bucket: "exports"}, "want https://host[:port]"},
		{"the system's roots do not trust a private CA", s3exports.Config{Endpoint: s3.Endpoint, Bucket: "exports", AccessKeyID: "id", SecretAccessKey: "secret"}, "certificate"},
		{"half the credentials", s3exports.Config{Endpoint: s3.Endpoint, CAFile: s3.CAFile, Bucket: "exports", AccessKeyID: "id"}, "both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s3exports.Open(ctx, tt.cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Open: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Open: %v; want an error with %q", err, tt.want)
			}
		})
	}
}

// TestObjects puts, replaces, reads and deletes objects under a prefix,
// and deletes a request's objects by their common prefix, leaving others.
func TestObjects(t *testing.T) {
	t.Parallel()
	s3 := testenv.StartS3(t, "exports")
	ctx := context.Background()
	b, err := s3exports.Open(ctx, s3exports.Config{Endpoint: s3.Endpoint, CAFile: s3.CAFile, Bucket: "exports/dsar", AccessKeyID: "id", SecretAccessKey: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	put := func(name, body string) {
		t.Helper()
		if err := b.Put(ctx, name, strings.NewReader(body), int64(len(body))); err != nil {
			t.Fatal(err)
		}
	}
	get := func(name string) (string, error) {
		t.Helper()
		r, err := b.Get(ctx, name)
		if err != nil {
			return "", err
		}
		defer r.Close()
		data, err := io.ReadAll(r)
		return string(data), err
	}
	put("exports/r1/a", "first")
	put("exports/r1/a", "second") // replaces
	put("exports/r1/b", "other")
	put("exports/r2/a", "kept")
	big := bytes.Repeat([]byte("x"), 20<<20) // past minio-go's single-part size: a multipart upload
	if err := b.Put(ctx, "exports/r2/big", bytes.NewReader(big), int64(len(big))); err != nil {
		t.Fatal(err)
	}
	if got, err := get("exports/r1/a"); err != nil || got != "second" {
		t.Fatalf("get: %q, %v; want the replacement", got, err)
	}
	if got, err := get("exports/r2/big"); err != nil || len(got) != len(big) {
		t.Fatalf("get big: %d bytes, %v", len(got), err)
	}
	if stored := s3.Objects(t, "exports", "dsar/"); len(stored) != 4 {
		t.Fatalf("the bucket holds %d objects under the prefix; want 4", len(stored))
	}
	if err := b.RemovePrefix(ctx, "exports/r1/"); err != nil {
		t.Fatal(err)
	}
	if _, err := get("exports/r1/b"); !errors.Is(err, s3exports.ErrNotFound) || !b.Missing(err) {
		t.Fatalf("get a removed object: %v; want ErrNotFound", err)
	}
	if got, err := get("exports/r2/a"); err != nil || got != "kept" {
		t.Fatalf("another request's object: %q, %v", got, err)
	}
	if err := b.Remove(ctx, "exports/r2/a"); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove(ctx, "exports/r2/a"); err != nil {
		t.Fatalf("removing what is gone: %v; want no error", err)
	}
	if err := b.RemovePrefix(ctx, "exports/none/"); err != nil {
		t.Fatalf("removing nothing: %v", err)
	}
}

// TestPutMangled: a service that stores an upload other than as sent (here
// gofakes3 over http, which keeps the aws-chunked framing of a signed
// streaming upload in the object) fails the Put: an export is not
// recorded as stored when what is stored is not it.
func TestPutMangled(t *testing.T) {
	t.Parallel()
	backend := s3mem.New()
	if err := backend.CreateBucket("exports"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	ctx := context.Background()
	b, err := s3exports.Open(ctx, s3exports.Config{Endpoint: srv.URL, Bucket: "exports", AccessKeyID: "id", SecretAccessKey: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 17<<16) // 17 MiB: a multipart upload
	if err := b.Put(ctx, "big", bytes.NewReader(data), int64(len(data))); err != nil {
		return // refused: right
	}
	r, err := b.Get(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("Put stored %d bytes of %d, not as sent, and said nothing", len(got), len(data))
	}
}
