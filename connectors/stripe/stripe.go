// Package stripe is the connector for a Stripe account: it exports a
// person's customers with their charges, invoices and card payment methods,
// as Stripe returns them, and erases them by deleting the customers or,
// when configured (erase: redact), by a privacy redaction job that Stripe
// carries out later and the worker polls. It has no opt-out: Stripe holds
// no marketing segments or consent flags.
//
// A person is found by email, in any case: GET /v1/customers?email= (an
// exact, case-sensitive match that is immediately consistent:
// https://docs.stripe.com/api/customers/list) and GET
// /v1/customers/search?query=email:"..." (case-insensitive, but
// word-based and searchable only within about a minute of a change:
// https://docs.stripe.com/search), every page of both followed, and a
// search result kept only when its email equals the subject's ignoring
// case. Export then lists, per customer, GET /v1/charges,
// /v1/invoices and /v1/payment_methods?type=card. Card numbers are never
// exported: Stripe returns only brand, expiry and last4.
//
// Erase (delete) is DELETE /v1/customers/{id} for each customer: permanent,
// and it cancels the customer's subscriptions; charges and invoices stay
// in Stripe, with the billing details they were made with. Erase (redact)
// files POST /v1/privacy/redaction_jobs for the customers (their related
// objects are redacted with them) under the preview API version
// (redaction_version: redaction jobs are a public preview that Stripe's
// SDKs carry only in their preview builds, pinned to a .preview
// version), with an Idempotency-Key derived from
// the connector and the customers, so that a retried erasure never files
// a second job; the action answers connectors.Pending with the job's id,
// and Poll reads GET /v1/privacy/redaction_jobs/{id}: created and
// validating wait, ready is run (POST .../run), redacting waits, succeeded
// completes, failed (a validation error), canceling and canceled fail the
// job for good so that an agent looks at it.
//
// The vendor's documentation:
//   - https://docs.stripe.com/api/authentication (secret keys, Bearer)
//   - https://docs.stripe.com/api/versioning (Stripe-Version)
//   - https://docs.stripe.com/api/pagination (has_more, starting_after)
//   - https://docs.stripe.com/api/errors ({"error": {"type", "code", "message", "param"}})
//   - https://docs.stripe.com/rate-limits (429, back off exponentially)
//   - https://docs.stripe.com/api/idempotent_requests (Idempotency-Key)
//   - https://docs.stripe.com/api/customers/delete
//   - https://docs.stripe.com/privacy/redaction and
//     https://docs.stripe.com/api/privacy/redaction-job/object (the job and its statuses)
package stripe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dsar-project/dsar/connectors"
)

// Connector is a configured stripe connector. Its methods are safe for
// concurrent use.
type Connector struct {
	name      string
	key       string
	version   string
	base      string
	erase     string
	actions   map[connectors.Action]bool
	pollEvery time.Duration
	preview   string
	search    bool
	limiter   connectors.Limiter
	client    *http.Client
	log       *slog.Logger
}

var (
	_ connectors.Exporter = (*Connector)(nil)
	_ connectors.Eraser   = (*Connector)(nil)
	_ connectors.Poller   = (*Connector)(nil)
	_ connectors.Scoped   = (*Connector)(nil)
	_ connectors.Checker  = (*Connector)(nil)
)

// The collections results and exports name.
const (
	Customers      = "customers"
	Charges        = "charges"
	Invoices       = "invoices"
	PaymentMethods = "payment_methods"
)

// matchKinds are the identity kinds a person is found by.
var matchKinds = []string{"email"}

// Name is the connector's name.
func (c *Connector) Name() string { return c.name }

// Handles reports whether the file lets the connector do a.
func (c *Connector) Handles(a connectors.Action) bool { return c.actions[a] }

// Client returns the connector's API client.
func (c *Connector) Client() *Client {
	return &Client{Base: c.base, Key: c.key, Version: c.version, PreviewVersion: c.preview, HTTP: c.client,
		Limiter: c.limiter, LimitKey: c.name}
}

// Check lists one customer: Stripe is reachable and the key may read
// customers. Whether it may delete them or file redaction jobs is not
// checked: that would change the account.
func (c *Connector) Check(ctx context.Context) []connectors.Check {
	err := c.Client().do(ctx, http.MethodGet, "/v1/customers?limit=1", nil, "", &list{})
	if err != nil {
		err = fmt.Errorf("stripe %s: %w", c.name, err)
	}
	return []connectors.Check{{What: "API reachable, key allowed to read customers", Err: err}}
}

// customer is one customer found: its id and the object as Stripe
// listed it.
type customer struct {
	id  string
	raw json.RawMessage
}

// customers returns the customers of every email of s, by id, without
// duplicates: those GET /v1/customers?email= lists (Stripe compares the
// email exactly, case included, and at once), and those the search finds
// whose email equals it ignoring case (the search alone would miss a
// customer created in the last minute, and its word-based match also
// finds other addresses that contain the subject's).
func (c *Connector) customers(ctx context.Context, s connectors.Subject) ([]customer, error) {
	var out []customer
	add := func(raw json.RawMessage, id string) {
		if !slices.ContainsFunc(out, func(c customer) bool { return c.id == id }) {
			out = append(out, customer{id: id, raw: raw})
		}
	}
	cl := c.Client()
	for _, e := range s.Values("email") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		err := cl.Each(ctx, "/v1/customers", url.Values{"email": {e}}, func(raw json.RawMessage, id string) error {
			add(raw, id)
			return nil
		})
		if err != nil {
			return nil, err
		}
		q, ok := EmailQuery(e)
		if !c.search || !ok {
			continue
		}
		err = cl.SearchCustomers(ctx, q, func(raw json.RawMessage, id string) error {
			var cu struct {
				Email string `json:"email"`
			}
			if json.Unmarshal(raw, &cu) == nil && strings.EqualFold(strings.TrimSpace(cu.Email), e) {
				add(raw, id)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b customer) int { return strings.Compare(a.id, b.id) })
	return out, nil
}

// Export writes the subject's customers, and each one's charges,
// invoices and card payment methods, as Stripe returns them.
func (c *Connector) Export(ctx context.Context, s connectors.Subject, out connectors.RecordWriter) (connectors.Result, error) {
	var res connectors.Result
	if len(s.Values("email")) == 0 {
		for _, col := range []string{Customers, Charges, Invoices, PaymentMethods} {
			res.NotSearched(col, matchKinds)
		}
		return res, nil
	}
	fail := func(err error) (connectors.Result, error) {
		return connectors.Result{}, fmt.Errorf("stripe %s: export: %w", c.name, scrub(err, s))
	}
	custs, err := c.customers(ctx, s)
	if err != nil {
		return fail(err)
	}
	cl := c.Client()
	n := map[string]int64{}
	for _, cu := range custs {
		if err := out.WriteRecord(ctx, Customers, cu.raw); err != nil {
			return fail(err)
		}
		n[Customers]++
	}
	for _, l := range []struct {
		col, path string
		query     url.Values
	}{
		{Charges, "/v1/charges", url.Values{}},
		{Invoices, "/v1/invoices", url.Values{}},
		{PaymentMethods, "/v1/payment_methods", url.Values{"type": {"card"}}},
	} {
		for _, cu := range custs {
			q := url.Values{"customer": {cu.id}}
			for k, v := range l.query {
				q[k] = v
			}
			err := cl.Each(ctx, l.path, q, func(raw json.RawMessage, _ string) error {
				n[l.col]++
				return out.WriteRecord(ctx, l.col, raw)
			})
			if err != nil {
				return fail(err)
			}
		}
	}
	for _, col := range []string{Customers, Charges, Invoices, PaymentMethods} {
		res.Searched(connectors.CollectionResult{Name: col, Outcome: "exported", Records: n[col],
			MatchKinds: matchKinds, KindsKnown: matchKinds})
	}
	c.log.InfoContext(ctx, "stripe export", "customers", n[Customers], "charges", n[Charges], "invoices", n[Invoices], "payment_methods", n[PaymentMethods])
	return res, nil
}

// Erase deletes the subject's customers, or files a redaction job for
// them (erase: redact).
func (c *Connector) Erase(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	var res connectors.Result
	if len(s.Values("email")) == 0 {
		res.NotSearched(Customers, matchKinds)
		return res, nil
	}
	fail := func(err error) (connectors.Result, error) {
		return connectors.Result{}, fmt.Errorf("stripe %s: erase: %w", c.name, scrub(err, s))
	}
	custs, err := c.customers(ctx, s)
	if err != nil {
		return fail(err)
	}
	ids := make([]string, 0, len(custs))
	for _, cu := range custs {
		ids = append(ids, cu.id)
	}
	if c.erase == EraseRedact && len(ids) > 0 {
		job, err := c.Client().CreateRedactionJob(ctx, ids, c.idempotencyKey(ids))
		if err != nil {
			return fail(err)
		}
		c.log.InfoContext(ctx, "stripe redaction job filed", "job", job.ID, "status", job.Status, "customers", len(ids))
		return connectors.Result{Pending: c.pending(job)}, nil
	}
	var deleted int64
	for _, id := range ids {
		ok, err := c.Client().DeleteCustomer(ctx, id)
		if err != nil {
			return fail(err)
		}
		if ok {
			deleted++
		}
	}
	c.log.InfoContext(ctx, "stripe customers deleted", "customers", deleted)
	res.Searched(connectors.CollectionResult{Name: Customers, Outcome: "deleted", Records: deleted,
		MatchKinds: matchKinds, KindsKnown: matchKinds,
		Note: "charges and invoices stay in Stripe with the billing details they were made with"})
	return res, nil
}

// idempotencyKey is the Idempotency-Key of the redaction job for ids: the
// same for a retry of the same erasure, naming no one.
func (c *Connector) idempotencyKey(ids []string) string {
	sum := sha256.Sum256([]byte(c.name + "\x00" + strings.Join(ids, ",")))
	return "dsar-redact-" + hex.EncodeToString(sum[:16])
}

func (c *Connector) pending(j RedactionJob) *connectors.Pending {
	return &connectors.Pending{Handle: j.ID, PollAfter: c.pollEvery,
		Unanswered: fmt.Sprintf("Stripe did not finish redaction job %s before the job's wait deadline (last status %s)", j.ID, j.Status)}
}

// handlePattern is the form of a redaction job id (prj_...) accepted as a
// handle.
var handlePattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,255}$`)

// Poll reads the redaction job named by handle, runs it once it is ready,
// and completes the erasure when it succeeded.
func (c *Connector) Poll(ctx context.Context, a connectors.Action, handle string, _ connectors.RecordWriter) (connectors.Result, error) {
	if a != connectors.ActionErase {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("stripe %s: %s: no such work is polled", c.name, a))
	}
	if !handlePattern.MatchString(handle) {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("stripe %s: %s: %q is not a redaction job id", c.name, a, handle))
	}
	j, err := c.Client().RedactionJob(ctx, handle)
	if err != nil {
		return connectors.Result{}, fmt.Errorf("stripe %s: %s: %w", c.name, a, err)
	}
	log := c.log.With("job", handle, "status", j.Status)
	switch j.Status {
	case JobReady:
		if j, err = c.Client().RunRedactionJob(ctx, handle); err != nil {
			return connectors.Result{}, fmt.Errorf("stripe %s: %s: %w", c.name, a, err)
		}
		log.InfoContext(ctx, "stripe redaction job run")
		return connectors.Result{Pending: c.pending(j)}, nil
	case JobCreated, JobValidating, JobRedacting:
		log.DebugContext(ctx, "stripe redaction job not finished")
		return connectors.Result{Pending: c.pending(j)}, nil
	case JobSucceeded:
		log.InfoContext(ctx, "stripe redaction job succeeded")
		var res connectors.Result
		res.Searched(connectors.CollectionResult{Name: Customers, Outcome: "redacted", Records: int64(len(j.Objects.Customers)),
			MatchKinds: matchKinds, KindsKnown: matchKinds,
			Note: "redaction job " + handle + " succeeded: the customers and their related objects are redacted"})
		return res, nil
	case JobFailed:
		log.WarnContext(ctx, "stripe redaction job failed")
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("stripe %s: %s: redaction job %s failed validation, so the request needs attention: read its validation errors in Stripe (GET /v1/privacy/redaction_jobs/%s/validation_errors), fix them and validate it again, or cancel it",
			c.name, a, handle, handle))
	case JobCanceling, JobCanceled:
		log.WarnContext(ctx, "stripe redaction job canceled")
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("stripe %s: %s: redaction job %s was canceled (%s), so nothing was redacted and the request needs attention", c.name, a, handle, j.Status))
	default:
		log.WarnContext(ctx, "stripe redaction job in an unknown status")
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("stripe %s: %s: redaction job %s is in status %q, which this connector does not know", c.name, a, handle, j.Status))
	}
}

// scrub replaces every identity value of s in err's text, in any case,
// with "[kind]", so that an error Stripe wrote quotes no one.
func scrub(err error, s connectors.Subject) error {
	msg := err.Error()
	clean := msg
	for _, id := range s.Identities {
		// A value of one or two characters says nothing of anyone, and
		// replacing it would mangle the message's numbers.
		if v := strings.TrimSpace(id.Value); len(v) >= 3 {
			clean = regexp.MustCompile(`(?i)`+regexp.QuoteMeta(v)).ReplaceAllLiteralString(clean, "["+id.Kind+"]")
		}
	}
	if clean == msg {
		return err
	}
	return connectors.Retext(err, clean)
}
