package testenv

import (
	"crypto/tls"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3 is an S3-compatible server for one test, over TLS on a loopback port:
// gofakes3 (an in-memory implementation of the S3 REST API: buckets,
// objects, multipart uploads, listing, batch deletes), no S3 server being
// installable from this machine's registries. It does not check request
// signatures, so tests of wrong credentials cannot run against it.
type S3 struct {
	// Endpoint is the server's URL, https://127.0.0.1:PORT; CAFile the
	// certificate of the authority that signed its certificate.
	Endpoint, CAFile string
	backend          *s3mem.Backend
}

// StartS3 starts an S3 server holding the given buckets, stopped when t
// ends.
func StartS3(t testing.TB, buckets ...string) *S3 {
	t.Helper()
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			t.Fatalf("testenv: s3 bucket %s: %v", b, err)
		}
	}
	certs := NewTLS(t)
	pair, err := tls.LoadX509KeyPair(certs.CertFile, certs.KeyFile)
	if err != nil {
		t.Fatalf("testenv: s3 certificate: %v", err)
	}
	srv := httptest.NewUnstartedServer(gofakes3.New(backend).Server())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &S3{Endpoint: srv.URL, CAFile: certs.CAFile, backend: backend}
}

// Objects returns the names of the objects in bucket under prefix, and
// their contents, as stored.
func (s *S3) Objects(t testing.TB, bucket, prefix string) map[string][]byte {
	t.Helper()
	p := gofakes3.NewPrefix(&prefix, nil)
	list, err := s.backend.ListBucket(bucket, &p, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatalf("testenv: list s3 bucket %s: %v", bucket, err)
	}
	out := map[string][]byte{}
	for _, o := range list.Contents {
		obj, err := s.backend.GetObject(bucket, o.Key, nil)
		if err != nil {
			t.Fatalf("testenv: s3 object %s: %v", o.Key, err)
		}
		b, err := io.ReadAll(obj.Contents)
		if err != nil {
			t.Fatalf("testenv: s3 object %s: %v", o.Key, err)
		}
		_ = obj.Contents.Close()
		out[o.Key] = b
	}
	return out
}
