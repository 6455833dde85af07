// Package s3exports keeps export packages as objects in an S3-compatible
// bucket (AWS S3, MinIO, Ceph, Cloudflare R2, Google Cloud Storage's XML
// API...) instead of the store's export records, through minio-go. It
// stores whatever it is given: store/sealedstore gives it each job's export
// already encrypted, so the bucket, its replicas and its backups only ever
// hold ciphertext.
package s3exports

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// ErrNotFound is what Get returns for an object that does not exist.
var ErrNotFound = errors.New("s3exports: no such object")

// Config says where the bucket is.
type Config struct {
	// Endpoint is the service's URL: https://host[:port] (http:// only
	// for a loopback host, as in tests and a local MinIO).
	Endpoint string
	// Bucket names the bucket, optionally followed by a prefix every
	// object name gets ("exports-bucket/dsar/").
	Bucket string
	// Region is the bucket's region; "" lets the client ask the service.
	Region string
	// CAFile, when set, names the PEM certificates that alone are trusted
	// for the endpoint's TLS (a private CA); else the system's roots.
	CAFile string
	// AccessKeyID and SecretAccessKey are static credentials; both empty:
	// the AWS environment (AWS_ACCESS_KEY_ID...), then the shared
	// credentials file, then the instance's IAM role.
	AccessKeyID, SecretAccessKey string
}

// Bucket is a bucket (and a prefix in it) holding export objects. Its
// methods are safe for concurrent use.
type Bucket struct {
	client         *minio.Client
	bucket, prefix string
}

// Open connects to the bucket cfg names and checks that it exists and that
// the credentials may see it.
func Open(ctx context.Context, cfg Config) (*Bucket, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("s3 endpoint %q: want https://host[:port]", cfg.Endpoint)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback(u.Hostname()) {
			return nil, fmt.Errorf("s3 endpoint %q: http only to this machine (127.0.0.1, ::1, localhost): exports would cross the network unencrypted in transport", cfg.Endpoint)
		}
	default:
		return nil, fmt.Errorf("s3 endpoint %q: want https://host[:port]", cfg.Endpoint)
	}
	bucket, prefix, _ := strings.Cut(cfg.Bucket, "/")
	if bucket == "" {
		return nil, errors.New("s3 bucket: empty")
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	var creds *credentials.Credentials
	switch {
	case cfg.AccessKeyID != "" && cfg.SecretAccessKey != "":
		creds = credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, "")
	case cfg.AccessKeyID != "" || cfg.SecretAccessKey != "":
		return nil, errors.New("s3 credentials: give both the access key id and the secret access key, or neither (the AWS environment or the instance's role)")
	default:
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}, &credentials.IAM{},
		})
	}
	secure := u.Scheme == "https"
	transport, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	if cfg.CAFile != "" {
		if !secure {
			return nil, errors.New("s3 CA file: only with an https endpoint")
		}
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("s3 CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("s3 CA file %s: no PEM certificate in it", cfg.CAFile)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	client, err := minio.New(u.Host, &minio.Options{Creds: creds, Secure: secure, Region: cfg.Region, Transport: transport})
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	ok, err := client.BucketExists(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("s3 bucket %s at %s: %w", bucket, u.Host, err)
	}
	if !ok {
		return nil, fmt.Errorf("s3 bucket %s at %s: no such bucket (dsar does not create it: create it with encryption, versioning off or a lifecycle rule that expires old versions, and no public access)", bucket, u.Host)
	}
	return &Bucket{client: client, bucket: bucket, prefix: prefix}, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Put stores r, size bytes, as object name, replacing any object of that
// name. It then checks the size the service gives the object: a service
// that stores an upload other than as sent (one that keeps the framing of
// a signed streaming upload, aws-chunked, in the object) fails the Put,
// rather than an export be recorded as stored that no download can read.
func (b *Bucket) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	_, err := b.client.PutObject(ctx, b.bucket, b.prefix+name, r, size, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return fmt.Errorf("s3: put %s: %w", name, err)
	}
	info, err := b.client.StatObject(ctx, b.bucket, b.prefix+name, minio.StatObjectOptions{})
	if err != nil {
		return fmt.Errorf("s3: put %s: checking the object stored: %w", name, err)
	}
	if info.Size != size {
		return fmt.Errorf("s3: put %s: the service stored %d bytes of the %d sent (does it take aws-chunked, signed streaming uploads?)", name, info.Size, size)
	}
	return nil
}

// Get opens object name for reading; ErrNotFound when there is none. The
// caller closes it.
func (b *Bucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	obj, err := b.client.GetObject(ctx, b.bucket, b.prefix+name, minio.GetObjectOptions{})
	if err == nil {
		_, err = obj.Stat() // GetObject asks nothing until read
	}
	if err != nil {
		if obj != nil {
			_ = obj.Close()
		}
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		return nil, fmt.Errorf("s3: get %s: %w", name, err)
	}
	return obj, nil
}

// Remove deletes object name; deleting one that does not exist is no error.
func (b *Bucket) Remove(ctx context.Context, name string) error {
	if err := b.client.RemoveObject(ctx, b.bucket, b.prefix+name, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("s3: remove %s: %w", name, err)
	}
	return nil
}

// RemovePrefix deletes every object whose name starts with prefix, in
// batches; it returns the first failure, after trying them all.
func (b *Bucket) RemovePrefix(ctx context.Context, prefix string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var listErr error
	objects := make(chan minio.ObjectInfo)
	listed := make(chan struct{})
	go func() {
		defer close(listed)
		defer close(objects)
		for o := range b.client.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: b.prefix + prefix, Recursive: true}) {
			if o.Err != nil {
				listErr = o.Err
				return
			}
			select {
			case objects <- o:
			case <-ctx.Done():
				return
			}
		}
	}()
	var first error
	for e := range b.client.RemoveObjects(ctx, b.bucket, objects, minio.RemoveObjectsOptions{}) {
		if first == nil && e.Err != nil {
			first = fmt.Errorf("s3: remove %s: %w", strings.TrimPrefix(e.ObjectName, b.prefix), e.Err)
		}
	}
	cancel() // the listing stops, if the removal ended first
	<-listed
	if first != nil {
		return first
	}
	if listErr != nil {
		return fmt.Errorf("s3: list %s: %w", prefix, listErr)
	}
	return nil
}

// Missing reports whether err is Get's answer for an object that does not
// exist.
func (b *Bucket) Missing(err error) bool { return errors.Is(err, ErrNotFound) }
