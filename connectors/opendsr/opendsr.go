// Package opendsr is the controller's side of OpenDSR 2.0: a connector type
// that passes a request's export (an access request) and erasure to a
// processor that speaks the protocol (an analytics, CDP or marketing
// vendor), and waits until the processor says it is completed or
// cancelled.
//
// It reads the processor's discovery document and certificate first (the
// certificate must chain to a trusted authority and be issued for the
// processor's domain), then POSTs the request with a subject_request_id
// derived from the job, so that the same job sends the same id at every
// attempt. Every answer and callback is verified against that certificate
// before it is parsed (internal/opendsr.Verify). The processor's callbacks
// reach POST /v1/callbacks/{job}, which VerifyCallback checks; when none
// comes, the worker polls GET /requests/{id}. docs/connectors/opendsr.md
// describes the settings and the choices made.
package opendsr

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"  //nolint:gosec // a format of the specification, not a protection
	"crypto/sha1" //nolint:gosec // a format of the specification, not a protection
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/internal/netguard"
	spec "github.com/dsar-project/dsar/internal/opendsr"
)

// Connector is a configured opendsr connector. Its methods are safe for
// concurrent use.
type Connector struct {
	name         string
	base         string // the processor's API, no trailing slash
	token        string
	domain       string
	roots        *x509.CertPool // nil: the system's
	regulation   string
	actions      map[connectors.Action]string // action -> request type
	pollEvery    time.Duration
	callbackBase string
	insecure     bool
	client       *http.Client
	now          func() time.Time
	log          *slog.Logger

	mu      sync.Mutex
	proc    *processor // the last discovery read, nil before the first
	fetched time.Time  // when proc was read
	// failed is when a read that a callback asked for last failed, and
	// failure what it said: callbacks make no other read for a minute.
	failed  time.Time
	failure error
}

var (
	_ connectors.Exporter         = (*Connector)(nil)
	_ connectors.Eraser           = (*Connector)(nil)
	_ connectors.Scoped           = (*Connector)(nil)
	_ connectors.Poller           = (*Connector)(nil)
	_ connectors.Answerer         = (*Connector)(nil)
	_ connectors.CallbackVerifier = (*Connector)(nil)
)

// Name is the connector's name.
func (c *Connector) Name() string { return c.name }

// Handles reports whether the connector passes a on.
func (c *Connector) Handles(a connectors.Action) bool { _, ok := c.actions[a]; return ok }

// Export files an access request for s with the processor.
func (c *Connector) Export(ctx context.Context, s connectors.Subject, _ connectors.RecordWriter) (connectors.Result, error) {
	return c.file(ctx, connectors.ActionExport, s)
}

// Erase files an erasure request for s with the processor.
func (c *Connector) Erase(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	return c.file(ctx, connectors.ActionErase, s)
}

// The bounds of what is read from the processor.
const (
	maxCertificate = 64 << 10
	// refreshEvery is how long a discovery document and certificate are
	// used before they are read again.
	refreshEvery = 24 * time.Hour
	// refreshAtMost is how often a signature that does not verify may
	// send the connector to read the certificate again (the processor
	// rotated its key): a stream of forged callbacks makes one read a
	// minute, not one each.
	refreshAtMost = time.Minute
)

// processor is what the discovery document says, with its certificate.
type processor struct {
	discovery spec.Discovery
	cert      *x509.Certificate
}

// identityTypes maps the identity kinds dsar holds onto OpenDSR's identity
// types (section 5.1). A kind with several types (an advertising id is
// one of several platforms') is sent as each the processor supports: the
// value names one device whichever platform it is read as.
var identityTypes = map[string][]string{
	"email":          {"email"},
	"customer_id":    {"controller_customer_id"},
	"advertising_id": {"ios_advertising_id", "android_advertising_id", "fire_advertising_id", "microsoft_advertising_id", "roku_advertising_id"},
	"device_id":      {"android_id", "ios_vendor_id", "microsoft_publisher_id", "roku_publisher_id"},
}

// file sends the request of action a for s and returns the pending work.
func (c *Connector) file(ctx context.Context, a connectors.Action, s connectors.Subject) (connectors.Result, error) {
	typ, ok := c.actions[a]
	if !ok {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("opendsr %s: the connector does not pass %s on", c.name, a))
	}
	p, err := c.processor(ctx, false, false)
	if err != nil {
		return connectors.Result{}, err
	}
	if !slices.Contains(p.discovery.SupportedSubjectRequestTypes, typ) {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("opendsr %s: the processor's discovery document lists no %s requests (it takes %s)",
			c.name, typ, codes(p.discovery.SupportedSubjectRequestTypes)))
	}
	ids, kinds := identities(s, p.discovery.SupportedIdentities)
	if len(kinds) == 0 {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("opendsr %s: the processor supports no identity type dsar holds (email, controller_customer_id, advertising and device ids)", c.name))
	}
	if len(ids) == 0 {
		var r connectors.Result
		r.NotSearched(collection, kinds)
		return r, nil
	}
	ref, _ := connectors.JobOf(ctx)
	srid := c.requestID(ref, a, s)
	req := spec.Request{Regulation: c.regulation, SubjectRequestID: srid, SubjectRequestType: typ, SubjectIdentities: ids,
		SubmittedTime: c.now().UTC().Format(time.RFC3339), APIVersion: spec.Version}
	if ref.ID != "" && c.callbackBase != "" {
		req.StatusCallbackURLs = []string{c.callbackURL(ref)}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return connectors.Result{}, fmt.Errorf("opendsr %s: %w", c.name, err)
	}
	resp, data, err := c.call(ctx, http.MethodPost, "/requests", body)
	if err != nil {
		return connectors.Result{}, err
	}
	log := c.logger().With("action", a, "subject_request_id", srid, "status", resp.StatusCode)
	if resp.StatusCode != http.StatusCreated {
		log.WarnContext(ctx, "opendsr request refused")
		return connectors.Result{}, c.refusal(ctx, "POST /requests", resp, data)
	}
	if err := c.verify(ctx, resp.Header, data, false); err != nil {
		return connectors.Result{}, err
	}
	var created spec.CreateResponse
	if err := spec.Decode(data, &created); err != nil || created.SubjectRequestID != srid {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("opendsr %s: the processor's 201 is not an answer to subject request %s", c.name, srid))
	}
	log.InfoContext(ctx, "opendsr request accepted; waiting for the processor")
	return c.pending(srid), nil
}

// maxResultsCount bounds the results_count taken from a processor for one
// request: a larger one is not believable, and is not counted.
const maxResultsCount = 1e12

// collection names, in results and exports, what the processor reported.
const collection = "requests"

// pending is the Result of a request the processor has not finished.
func (c *Connector) pending(srid string) connectors.Result {
	return connectors.Result{Pending: &connectors.Pending{Handle: srid, PollAfter: c.pollEvery,
		Unanswered: fmt.Sprintf("the processor %s did not complete subject request %s", c.domain, srid)}}
}

// identities returns the subject's identities as OpenDSR identities, each
// kind in every type of it the processor supports, raw when it may, else
// in the first hash format it supports (sha256, sha1, md5: the hex digest
// of the value as dsar holds it, normalised); and the kinds the processor
// can match on, sorted.
func identities(s connectors.Subject, supported []spec.Identity) ([]spec.Identity, []string) {
	formats := map[string][]string{}
	for _, si := range supported {
		formats[si.Type] = append(formats[si.Type], si.Format)
	}
	var out []spec.Identity
	var kinds []string
	for kind, types := range identityTypes {
		matched := false
		for _, typ := range types {
			format := ""
			for _, f := range []string{spec.FormatRaw, spec.FormatSHA256, spec.FormatSHA1, spec.FormatMD5} {
				if slices.Contains(formats[typ], f) {
					format = f
					break
				}
			}
			if format == "" {
				continue
			}
			matched = true
			// The identities as dsar holds them, normalised: not Values,
			// which adds the upper-case form of a device's id for
			// systems matching it as written.
			for _, id := range s.Identities {
				if id.Kind == kind {
					out = append(out, spec.Identity{Type: typ, Format: format, Value: digest(format, id.Value)})
				}
			}
		}
		if matched {
			kinds = append(kinds, kind)
		}
	}
	sort.Strings(kinds)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return out[i].Type < out[j].Type
		}
		return out[i].Value < out[j].Value
	})
	return out, kinds
}

// digest is v in format f.
func digest(f, v string) string {
	switch f {
	case spec.FormatSHA256:
		sum := sha256.Sum256([]byte(v))
		return hex.EncodeToString(sum[:])
	case spec.FormatSHA1:
		sum := sha1.Sum([]byte(v)) //nolint:gosec // the format the processor asked for
		return hex.EncodeToString(sum[:])
	case spec.FormatMD5:
		sum := md5.Sum([]byte(v)) //nolint:gosec // the format the processor asked for
		return hex.EncodeToString(sum[:])
	}
	return v
}

// requestID is the subject_request_id of job's request (a UUID v4 in form,
// as section 7.1 asks): the same job gives the same id, so a POST sent
// again after a crash or a lost answer names the request the processor
// already has; an agent's retry of the job (job.Retries) gives a new one,
// so that a request the processor cancelled can be passed again. A call
// made for no job (a test) derives it from the identities instead, keyed
// with the token, so that it names none of them.
func (c *Connector) requestID(job connectors.JobRef, a connectors.Action, s connectors.Subject) string {
	m := hmac.New(sha256.New, []byte("dsar opendsr subject_request_id v1"))
	m.Write([]byte(c.name + "\x00" + job.ID + "\x00" + string(a)))
	if job.Retries > 0 {
		m.Write([]byte("\x00retry " + strconv.Itoa(job.Retries)))
	}
	if job.ID == "" {
		ids := make([]string, 0, len(s.Identities))
		for _, i := range s.Identities {
			ids = append(ids, i.Kind+"="+i.Value)
		}
		sort.Strings(ids)
		k := hmac.New(sha256.New, []byte(c.token))
		for _, i := range ids {
			k.Write([]byte(i + "\x00"))
		}
		m.Write(k.Sum(nil))
	}
	b := m.Sum(nil)[:16]
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// callbackURL is where the processor calls back for job: its callback
// route, with the retry the request was passed for (see requestID).
func (c *Connector) callbackURL(job connectors.JobRef) string {
	u := c.callbackBase + "/v1/callbacks/" + url.PathEscape(job.ID)
	if job.Retries > 0 {
		u += "?retry=" + strconv.Itoa(job.Retries)
	}
	return u
}

// callbackJob reads the job and its retry back from a status_callback_url
// this connector gave; ok is false for any other URL.
func (c *Connector) callbackJob(u string) (job connectors.JobRef, ok bool) {
	prefix := c.callbackBase + "/v1/callbacks/"
	rest, found := strings.CutPrefix(u, prefix)
	if c.callbackBase == "" || !found {
		return job, false
	}
	path, query, _ := strings.Cut(rest, "?")
	id, err := url.PathUnescape(path)
	if err != nil || id == "" || strings.Contains(path, "/") {
		return job, false
	}
	job.ID = id
	if query != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(query, "retry="))
		if !strings.HasPrefix(query, "retry=") || err != nil || n <= 0 || query != "retry="+strconv.Itoa(n) {
			return job, false
		}
		job.Retries = n
	}
	return job, true
}

// Poll reads the status of the request handle names.
func (c *Connector) Poll(ctx context.Context, a connectors.Action, handle string, out connectors.RecordWriter) (connectors.Result, error) {
	if !spec.ValidID(handle) {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("opendsr %s: the job waits on %q, not a subject_request_id", c.name, handle))
	}
	resp, data, err := c.call(ctx, http.MethodGet, "/requests/"+handle, nil)
	if err != nil {
		return connectors.Result{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return connectors.Result{}, c.refusal(ctx, "GET /requests/"+handle, resp, data)
	}
	if err := c.verify(ctx, resp.Header, data, false); err != nil {
		return connectors.Result{}, err
	}
	var st spec.StatusResponse
	if err := spec.Decode(data, &st); err != nil {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("opendsr %s: the processor's status: %w", c.name, err))
	}
	return c.settle(ctx, a, handle, report{srid: st.SubjectRequestID, status: st.RequestStatus, expected: st.ExpectedCompletionTime,
		resultsURL: st.ResultsURL, resultsCount: st.ResultsCount}, out)
}

// Answer takes up a callback the API verified and stored as the job's
// answer.
func (c *Connector) Answer(ctx context.Context, a connectors.Action, handle string, answer []byte, out connectors.RecordWriter) (connectors.Result, error) {
	var cb spec.Callback
	if err := spec.Decode(answer, &cb); err != nil {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("opendsr %s: the processor's callback: %w", c.name, err))
	}
	return c.settle(ctx, a, handle, report{srid: cb.SubjectRequestID, status: cb.RequestStatus, expected: cb.ExpectedCompletionTime,
		resultsURL: cb.ResultsURL, resultsCount: cb.ResultsCount}, out)
}

// report is what a status or a callback says.
type report struct {
	srid, status, expected, resultsURL string
	resultsCount                       *int64
}

// settle turns what the processor reported into the job's result: still
// pending, done, or a permanent failure when the processor cancelled.
func (c *Connector) settle(ctx context.Context, a connectors.Action, handle string, r report, out connectors.RecordWriter) (connectors.Result, error) {
	if r.srid != handle {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("opendsr %s: the processor reported on another subject_request_id than %s", c.name, handle))
	}
	log := c.logger().With("action", a, "subject_request_id", handle, "request_status", r.status)
	switch r.status {
	case spec.StatusPending, spec.StatusInProgress:
		log.InfoContext(ctx, "opendsr request not completed yet")
		return c.pending(handle), nil
	case spec.StatusCancelled:
		log.WarnContext(ctx, "opendsr request cancelled by the processor")
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("opendsr %s: the processor %s cancelled subject request %s (OpenDSR gives no reason: ask the processor)", c.name, c.domain, handle))
	case spec.StatusCompleted:
	default:
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("opendsr %s: the processor reported the request_status %s, which OpenDSR 2.0 does not define", c.name, quoted(r.status)))
	}
	if r.resultsURL != "" {
		if u, err := url.Parse(r.resultsURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return connectors.Result{}, connectors.Permanent(fmt.Errorf("opendsr %s: the processor's results_url is not an http(s) URL", c.name))
		}
	}
	if r.resultsCount != nil && *r.resultsCount < 0 {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("opendsr %s: the processor's results_count is negative", c.name))
	}
	log.InfoContext(ctx, "opendsr request completed")
	var res connectors.Result
	cr := connectors.CollectionResult{Name: collection, Outcome: "deleted"}
	switch {
	case r.resultsCount != nil && *r.resultsCount > maxResultsCount:
		// Counted, it would be summed with the other jobs' records (the
		// request's totals, the reports) past what an int64 holds.
		log.WarnContext(ctx, "opendsr results_count not believable; not counted")
		r.resultsCount = nil
		cr.Note = fmt.Sprintf("completed by the processor %s, whose results_count (over %d) is not believable: not counted", c.domain, int64(maxResultsCount))
	case r.resultsCount != nil:
		cr.Records = *r.resultsCount
	default:
		cr.Note = "completed by the processor " + c.domain + ", which did not count what it found"
	}
	if a == connectors.ActionExport {
		// What OpenDSR returns of an access request is where the results
		// are (results_url, at the processor, in a format the
		// specification does not define) and how many: that is the
		// record. A dsar processor's results are read in too.
		cr.Outcome, cr.Records = "exported", 1
		if cr.Note == "" && r.resultsCount != nil {
			cr.Note = fmt.Sprintf("the processor %s holds %d results", c.domain, *r.resultsCount)
		}
		if out != nil {
			rec := map[string]any{"processor": c.domain, "subject_request_id": handle, "request_status": r.status}
			if r.resultsURL != "" {
				rec["results_url"] = r.resultsURL
			}
			if r.resultsCount != nil {
				rec["results_count"] = *r.resultsCount
			}
			if err := out.WriteRecord(ctx, collection, rec); err != nil {
				return connectors.Result{}, err
			}
		}
	}
	res.Searched(cr)
	if a == connectors.ActionExport && out != nil && r.resultsURL != "" {
		got, err := c.results(ctx, handle, r.resultsURL, out)
		if err != nil {
			return connectors.Result{}, err
		}
		if got == nil {
			res.Collections[0].Note = "the results stay at the processor's results_url: " + c.unread(r.resultsURL)
		}
		for _, g := range got {
			res.Add(g.name, "exported", g.n)
		}
	}
	return res, nil
}

// MaxResults bounds a results document read from a results_url (a dsar
// processor's are at most 16 MiB).
const MaxResults = 16<<20 + 4<<10

// resultsDoc is the results document a dsar processor serves at
// results_url (docs/protocols.md).
type resultsDoc struct {
	SubjectRequestID string `json:"subject_request_id"`
	Results          []struct {
		System     string          `json:"system"`
		Collection string          `json:"collection"`
		Record     json.RawMessage `json:"record"`
	} `json:"results"`
}

// counted is how many records one collection of results held.
type counted struct {
	name string
	n    int64
}

// unread says why the results at u were not read into the export.
func (c *Connector) unread(u string) string {
	if !c.sameOrigin(u) {
		return "it is not on the processor's API, which alone is sent the token"
	}
	return "they are not a signed results document dsar reads"
}

// sameOrigin reports whether u is on the scheme, host and port of the
// processor's API: only there is the token sent.
func (c *Connector) sameOrigin(u string) bool {
	a, err1 := url.Parse(u)
	b, err2 := url.Parse(c.base)
	return err1 == nil && err2 == nil && a.Scheme == b.Scheme && strings.EqualFold(a.Host, b.Host) && a.User == nil
}

// results reads the results document at u into out, each record in the
// collection "<system>.<collection>" of the processor's systems, and
// returns the counts per collection. It reads only a results_url on the
// processor's API, signed by the processor, in the results document's
// form (a dsar processor's); otherwise it returns nil and the export
// keeps the reference alone. A failure to reach it is an error, retried.
func (c *Connector) results(ctx context.Context, srid, u string, out connectors.RecordWriter) ([]counted, error) {
	if !c.sameOrigin(u) {
		return nil, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, data, err := c.send(req, MaxResults)
	if err != nil {
		return nil, err
	}
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable || code == http.StatusRequestTimeout || code >= 500:
		return nil, c.refusal(ctx, "GET results_url", resp, data)
	case code != http.StatusOK:
		return nil, nil
	}
	if err := c.verify(ctx, resp.Header, data, false); err != nil {
		c.logger().WarnContext(ctx, "opendsr results not signed by the processor; the export keeps the reference", "subject_request_id", srid)
		return nil, nil
	}
	var doc resultsDoc
	if err := spec.Decode(data, &doc); err != nil || doc.SubjectRequestID != srid {
		return nil, nil
	}
	sort.SliceStable(doc.Results, func(i, j int) bool {
		if doc.Results[i].System != doc.Results[j].System {
			return doc.Results[i].System < doc.Results[j].System
		}
		return doc.Results[i].Collection < doc.Results[j].Collection
	})
	var got []counted
	for _, r := range doc.Results {
		name := r.System + "." + r.Collection
		if len(got) == 0 || got[len(got)-1].name != name {
			got = append(got, counted{name: name})
		}
		if err := out.WriteRecord(ctx, name, r.Record); err != nil {
			return nil, err
		}
		got[len(got)-1].n++
	}
	return got, nil
}

// VerifyCallback checks a callback as section 8.8 says: signed for the
// connector's processor domain, under the certificate its discovery
// document names (read again, at most once a minute, when the signature
// does not verify under the one held: the processor may have rotated its
// key), before the body is parsed; then a callback naming a
// status_callback_url this connector gave, for the request it gave that
// URL with. A signature that does not verify is ErrCallbackForbidden (a
// 403, as section 8.8 says). OpenDSR callbacks carry no timestamp: a
// callback sent again is taken again, and only a job waiting on its
// request takes it.
func (c *Connector) VerifyCallback(ctx context.Context, a connectors.Action, h http.Header, body []byte, _ time.Time) (string, error) {
	if err := c.verify(ctx, h, body, true); err != nil {
		if errors.Is(err, errNotSigned) {
			return "", fmt.Errorf("%w: %w", connectors.ErrCallbackForbidden, err)
		}
		return "", err
	}
	var cb spec.Callback
	if err := spec.Decode(body, &cb); err != nil {
		return "", fmt.Errorf("%w: %w", connectors.ErrCallbackInvalid, err)
	}
	job, given := c.callbackJob(cb.StatusCallbackURL)
	var err error
	switch {
	case !spec.ValidID(cb.SubjectRequestID):
		err = errors.New("subject_request_id: want a UUID v4")
	case !slices.Contains([]string{spec.StatusPending, spec.StatusInProgress, spec.StatusCompleted, spec.StatusCancelled}, cb.RequestStatus):
		err = errors.New("request_status: want pending, in_progress, completed or cancelled")
	case !given:
		err = errors.New("status_callback_url: not a URL this controller gave")
	case c.requestID(job, a, connectors.Subject{}) != cb.SubjectRequestID:
		err = errors.New("status_callback_url: not the URL given with this subject_request_id")
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", connectors.ErrCallbackInvalid, err)
	}
	return cb.SubjectRequestID, nil
}

// MaxCallbackBytes is the largest callback the connector takes: an
// OpenDSR message (callbackapi refuses a longer one before reading it).
func (c *Connector) MaxCallbackBytes() int64 { return spec.MaxMessage }

// errNotSigned is wrapped by the errors of verify that say the message is
// not the processor's: unsigned, signed for another domain, or not under
// its certificate.
var errNotSigned = errors.New("not signed by the processor")

// verify checks that body was signed, as h says, by the connector's
// processor. A signature that fails under the certificate held makes the
// connector read the certificate again (at most once a minute) and try
// that. byCallback says that anyone may have sent it (see processor).
func (c *Connector) verify(ctx context.Context, h http.Header, body []byte, byCallback bool) error {
	domain, sig, err := spec.Signature(h)
	if err != nil {
		return fmt.Errorf("opendsr %s: %w: %w", c.name, errNotSigned, err)
	}
	if !strings.EqualFold(strings.TrimSuffix(domain, "."), c.domain) {
		return fmt.Errorf("opendsr %s: %w: signed for the domain %s, not %s", c.name, errNotSigned, quoted(domain), c.domain)
	}
	p, err := c.processor(ctx, false, byCallback)
	if err != nil {
		return err
	}
	if spec.Verify(p.cert, body, sig) == nil {
		return nil
	}
	if q, err := c.processor(ctx, true, byCallback); err == nil && q.cert != p.cert && spec.Verify(q.cert, body, sig) == nil {
		return nil
	}
	return fmt.Errorf("opendsr %s: %w: %w", c.name, errNotSigned, spec.ErrSignature)
}

// processor returns the processor's discovery document and certificate:
// those held, unless they are a day old, the certificate has expired, or
// fresh asks for them again (allowed once a minute).
//
// byCallback says a callback asks: anyone can send one, so a read it
// asks for that fails is not tried again for a minute (callbacks get the
// read's error meanwhile) — else a stream of callbacks claiming the
// processor's domain, while the processor is down or its certificate
// expired, would make the controller call the processor once each, one
// after the other under the lock. A worker's call always tries. The read
// is not cut short when the caller's context ends (a callback's sender
// hanging up would leave a failure behind for the next minute).
func (c *Connector) processor(ctx context.Context, fresh, byCallback bool) (*processor, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if p := c.proc; p != nil {
		stale := now.Sub(c.fetched) > refreshEvery || now.After(p.cert.NotAfter)
		if !stale && (!fresh || now.Sub(c.fetched) < refreshAtMost) {
			return p, nil
		}
	}
	if byCallback && c.failure != nil && now.Sub(c.failed) < refreshAtMost {
		return nil, c.failure
	}
	// The read serves every caller waiting on the lock, not only this
	// one: it is not cut short when this caller's context ends (a
	// callback's sender hanging up), only by the client's timeout.
	p, err := c.discover(context.WithoutCancel(ctx), now)
	if err != nil {
		c.logger().WarnContext(ctx, "opendsr discovery failed", "error", err)
		c.failed, c.failure = now, err
		return nil, err
	}
	c.proc, c.fetched, c.failure = p, now, nil
	return p, nil
}

// discover reads the discovery document and the certificate it names,
// and checks both: the certificate chains to a trusted authority and is
// issued for the processor's domain, and signs the document when the
// document is signed (the specification's example is not).
func (c *Connector) discover(ctx context.Context, now time.Time) (*processor, error) {
	resp, data, err := c.call(ctx, http.MethodGet, "/discovery", nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.refusal(ctx, "GET /discovery", resp, data)
	}
	var d spec.Discovery
	if err := spec.Decode(data, &d); err != nil {
		return nil, connectors.Permanent(fmt.Errorf("opendsr %s: the processor's discovery document: %w", c.name, err))
	}
	if major, _, _ := strings.Cut(d.APIVersion, "."); major != "2" {
		return nil, connectors.Permanent(fmt.Errorf("opendsr %s: the processor speaks OpenDSR %s; this connector speaks %s", c.name, quoted(d.APIVersion), spec.Version))
	}
	cu, err := url.Parse(d.ProcessorCertificate)
	base, _ := url.Parse(c.base)
	switch {
	case err != nil || cu.Host == "" || (cu.Scheme != "https" && !(cu.Scheme == "http" && c.insecure)):
		return nil, connectors.Permanent(fmt.Errorf("opendsr %s: the discovery document's processor_certificate is not an https URL", c.name))
	case !strings.EqualFold(cu.Hostname(), base.Hostname()) && !strings.EqualFold(cu.Hostname(), c.domain):
		return nil, connectors.Permanent(fmt.Errorf("opendsr %s: the discovery document's processor_certificate is on %s, neither the processor's API nor its domain (section 6.3)", c.name, cu.Hostname()))
	}
	cresp, pemData, err := c.get(ctx, cu.String(), maxCertificate)
	if err != nil {
		return nil, err
	}
	if cresp.StatusCode != http.StatusOK {
		return nil, c.refusal(ctx, "GET processor_certificate", cresp, pemData)
	}
	chain, err := spec.ParseChain(pemData)
	if err != nil {
		return nil, connectors.Permanent(fmt.Errorf("opendsr %s: the processor's certificate: %w", c.name, err))
	}
	if len(chain) == 0 {
		return nil, connectors.Permanent(fmt.Errorf("opendsr %s: the processor's certificate URL holds no PEM certificate", c.name))
	}
	if err := spec.VerifyCertificate(chain[0], chain[1:], c.domain, c.roots, now); err != nil {
		return nil, connectors.Permanent(fmt.Errorf("opendsr %s: %w", c.name, err))
	}
	if domain, sig, err := spec.Signature(resp.Header); err == nil {
		if !strings.EqualFold(strings.TrimSuffix(domain, "."), c.domain) || spec.Verify(chain[0], data, sig) != nil {
			return nil, connectors.Permanent(fmt.Errorf("opendsr %s: the discovery document's signature does not verify under the processor's certificate for %s", c.name, c.domain))
		}
	}
	return &processor{discovery: d, cert: chain[0]}, nil
}

// call sends method path (with body, JSON, when not nil) to the
// processor with the token, and reads the answer.
func (c *Connector) call(ctx context.Context, method, path string, body []byte) (*http.Response, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, nil, connectors.Permanent(fmt.Errorf("opendsr %s: %w", c.name, err))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	return c.send(req, spec.MaxMessage)
}

// get reads u with no credential (the certificate is public).
func (c *Connector) get(ctx context.Context, u string, limit int) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, connectors.Permanent(fmt.Errorf("opendsr %s: %w", c.name, err))
	}
	return c.send(req, limit)
}

// send does req and reads at most limit bytes of the answer.
func (c *Connector) send(req *http.Request, limit int) (*http.Response, []byte, error) {
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dsar-opendsr/2.0")
	what := req.Method + " " + req.URL.Path
	resp, err := c.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		err = fmt.Errorf("opendsr %s: %s: %w", c.name, what, err)
		if errors.Is(err, netguard.ErrRefused) {
			return nil, nil, connectors.Permanent(err)
		}
		return nil, nil, err // the network: transient
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return nil, nil, fmt.Errorf("opendsr %s: %s: reading the answer: %w", c.name, what, err)
	}
	if len(data) > limit {
		return nil, nil, connectors.Permanent(fmt.Errorf("opendsr %s: %s: the answer is longer than %d bytes", c.name, what, limit))
	}
	return resp, data, nil
}

// refusal is the error of an answer the call did not want: permanent when
// retrying cannot help (the token refused, the request refused, an
// unknown path, a redirect), RetryAfter when the processor says when to
// come back, else transient. It carries the reason of the
// specification's error object, never its message's values.
func (c *Connector) refusal(ctx context.Context, what string, resp *http.Response, data []byte) error {
	code := resp.StatusCode
	err := fmt.Errorf("opendsr %s: %s: the processor answered %d %s", c.name, what, code, http.StatusText(code))
	var e spec.ErrorBody
	if spec.Decode(data, &e) == nil && len(e.Error.Errors) > 0 {
		if r := e.Error.Errors[0].Reason; quoted(r) == strconv.Quote(r) {
			err = fmt.Errorf("%w (%s)", err, r)
		}
	}
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if d, ok := connectors.RetryAfterHeader(resp.Header.Get("Retry-After"), c.now()); ok {
			return connectors.RetryAfter(d, err)
		}
		if code == http.StatusTooManyRequests {
			return connectors.RetryAfter(time.Minute, err)
		}
		return err
	case code == http.StatusRequestTimeout || code >= 500:
		return err
	case code >= 300 && code < 400:
		return connectors.Permanent(fmt.Errorf("%w (%w: point url at the final address)", err, netguard.ErrRedirect))
	default:
		return connectors.Permanent(err)
	}
}

// quoted returns s quoted when it is a code: 1 to 64 ASCII letters, digits and
// _-. (a reason code, a status, a version); else a placeholder. What a
// processor says is quoted in an error (shown to agents, logged) only
// so: whole or not at all, since a value with its other characters taken
// out (an email without its @) is still the value, and no longer one the
// worker's redaction of the subject's identities finds.
func quoted(s string) string {
	ok := s != "" && len(s) <= 64
	for _, r := range s {
		if !(r == '_' || r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			ok = false
			break
		}
	}
	if !ok {
		return "a value not shown"
	}
	return strconv.Quote(s)
}

// codes is list with each item shown as quoted shows it.
func codes(list []string) string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = quoted(s)
	}
	return strings.Join(out, ", ")
}

func (c *Connector) logger() *slog.Logger {
	if c.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.log
}

var _ connectors.Checker = (*Connector)(nil)

// Check reads the discovery document and certificate, checks that the
// processor takes the request type of each action the connector passes
// on, and that it accepts the token: the status of a request id that
// exists nowhere must be 404, not 401 or 403.
func (c *Connector) Check(ctx context.Context) []connectors.Check {
	p, err := c.processor(ctx, true, false)
	out := []connectors.Check{{What: "discovery document and certificate for " + c.domain, Err: err}}
	if err != nil {
		return out
	}
	for _, a := range slices.Sorted(maps.Keys(c.actions)) {
		typ := c.actions[a]
		var err error
		if !slices.Contains(p.discovery.SupportedSubjectRequestTypes, typ) {
			err = fmt.Errorf("the processor takes %s, not %s", codes(p.discovery.SupportedSubjectRequestTypes), typ)
		}
		out = append(out, connectors.Check{What: "processor takes " + typ + " requests (" + string(a) + ")", Err: err})
	}
	resp, data, err := c.call(ctx, http.MethodGet, "/requests/"+c.requestID(connectors.JobRef{ID: "dsar connectors test"}, connectors.ActionExport, connectors.Subject{}), nil)
	switch {
	case err != nil:
	case resp.StatusCode == http.StatusNotFound:
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		err = fmt.Errorf("the processor refused the token: %w", c.refusal(ctx, "GET /requests/{id}", resp, data))
	default:
		err = fmt.Errorf("a status read of an unknown request answered %d, not 404", resp.StatusCode)
	}
	return append(out, connectors.Check{What: "token accepted", Err: err})
}
