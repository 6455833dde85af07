// Package apitest keeps the OpenAPI document of the API (handlers.OpenAPI)
// true: tests send their traffic through [Transport], which checks every
// request and response against the document, and call [CheckRoutes], which
// checks that the document and the router list the same operations.
//
// Use it from external test packages (package handlers_test): it imports
// handlers, so tests inside package handlers cannot import it.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/handlers"
)

// Load parses handlers.OpenAPI. It does not validate it: see [Validate].
func Load(t testing.TB) *openapi3.T {
	t.Helper()
	return load(t, handlers.OpenAPI)
}

func load(t testing.TB, spec []byte) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		t.Fatalf("apitest: load the OpenAPI document: %v", err)
	}
	return doc
}

// Validate checks the document against the OpenAPI specification, examples
// included. Documents of OpenAPI 3.1 are checked as such (JSON Schema
// 2020-12).
func Validate(ctx context.Context, doc *openapi3.T) error {
	return doc.Validate(ctx, openapi3.EnableExamplesValidation(), openapi3.EnableSchemaDefaultsValidation(), openapi3.EnableSchemaPatternValidation())
}

// Transport returns a RoundTripper that sends requests through base
// (http.DefaultTransport when nil) and checks each exchange against
// handlers.OpenAPI, reporting every mismatch with t.Errorf:
//
//   - A request the document forbids (bad body, parameter, missing bearer
//     key...) must be rejected with a 4xx status. Tests may send such
//     requests on purpose; the server must refuse them.
//   - A request the document allows may get any status the operation
//     documents: the server checks more than the document can say.
//   - The status of every response must be documented for its operation,
//     and its headers and body must match what is documented for it. Bodies
//     of application/zip responses are not inspected, only their media type.
//   - A request for a method and path the document does not have must be
//     answered 4xx with a problem (the server's 404 and 405).
//
// Bodies are buffered in full: the caller gets them back unchanged.
// Mismatches are reported on t, so make one transport per test (or subtest).
// The document's security schemes are checked for presence only (an
// "Authorization: Bearer <token>" header), not against real keys.
func Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	t.Helper()
	return NewTransport(t, handlers.OpenAPI, base)
}

// NewTransport is [Transport] for any OpenAPI document.
func NewTransport(t testing.TB, spec []byte, base http.RoundTripper) http.RoundTripper {
	t.Helper()
	doc := load(t, spec)
	if err := Validate(context.Background(), doc); err != nil {
		t.Fatalf("apitest: the OpenAPI document is not valid: %v", err)
	}
	// Route on paths alone: the document's servers, if any, are not where
	// tests run.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("apitest: route the OpenAPI document: %v", err)
	}
	if base == nil {
		base = http.DefaultTransport
	}
	tr := &transport{t: t, base: base, router: router}
	if ref := doc.Components.Schemas["Problem"]; ref != nil {
		tr.problem = ref.Value
	}
	return tr
}

// exact returns the route of the document's path that is exactly req's
// (a path without parameters), when the router chose one differing by a
// trailing slash; nil when there is none.
func (tr *transport) exact(near *routers.Route, req *http.Request) *routers.Route {
	item := near.Spec.Paths.Value(req.URL.Path)
	if item == nil {
		return nil
	}
	op := item.GetOperation(req.Method)
	if op == nil {
		return nil
	}
	return &routers.Route{Spec: near.Spec, Server: near.Server, Path: req.URL.Path, PathItem: item, Method: req.Method, Operation: op}
}

// Client returns an HTTP client whose transport is [Transport], with a
// one-minute timeout so a hung server fails the test instead of stalling it.
func Client(t testing.TB) *http.Client {
	t.Helper()
	return &http.Client{Transport: Transport(t, nil), Timeout: time.Minute}
}

type transport struct {
	t       testing.TB
	base    http.RoundTripper
	router  routers.Router
	problem *openapi3.Schema
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("apitest: read request body: %w", err)
		}
	}
	send := withBody(req, body)
	check := withBody(req, body)
	what := req.Method + " " + req.URL.RequestURI()

	route, pathParams, routeErr := tr.router.FindRoute(check)
	if routeErr == nil && expand(route.Path, pathParams) != check.URL.Path {
		// The router forgives a trailing slash; the server does not. A
		// document with both paths (DRP's, which takes both) has the
		// exact one.
		if exact := tr.exact(route, check); exact != nil {
			route = exact
		} else {
			routeErr = fmt.Errorf("path %q is not exactly %q", check.URL.Path, route.Path)
		}
	}
	var input *openapi3filter.RequestValidationInput
	var reqErr error
	if routeErr == nil {
		input = &openapi3filter.RequestValidationInput{
			Request:    check,
			PathParams: pathParams,
			Route:      route,
			Options: &openapi3filter.Options{
				AuthenticationFunc:  bearerPresent,
				SkipSettingDefaults: true,
				MultiError:          true,
			},
		}
		reqErr = openapi3filter.ValidateRequest(req.Context(), input)
	}

	resp, err := tr.base.RoundTrip(send)
	if err != nil {
		return nil, err
	}
	data, readErr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = &replay{r: bytes.NewReader(data), err: readErr}
	if readErr != nil {
		tr.t.Errorf("apitest: %s: %d: reading the response body failed: %v", what, resp.StatusCode, readErr)
		return resp, nil
	}

	if routeErr != nil {
		tr.checkUndocumented(what, req.Method, routeErr, resp, data)
		return resp, nil
	}
	if reqErr != nil && (resp.StatusCode < 400 || resp.StatusCode > 499) {
		tr.t.Errorf("apitest: %s: %d: the document forbids this request but the server did not reject it with a 4xx: %v", what, resp.StatusCode, reqErr)
	}
	tr.checkResponse(what, input, resp, data)
	return resp, nil
}

// checkResponse validates a response against its operation.
func (tr *transport) checkResponse(what string, input *openapi3filter.RequestValidationInput, resp *http.Response, data []byte) {
	op := input.Route.Operation
	documented := op.Responses.Status(resp.StatusCode)
	if documented == nil {
		documented = op.Responses.Default()
	}
	if documented == nil || documented.Value == nil {
		tr.t.Errorf("apitest: %s: %d: status not documented for operation %s (documented: %s)", what, resp.StatusCode, opName(input.Route), strings.Join(statuses(op), ", "))
		return
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/zip" {
		// Exports are streamed and can be large, and a failed export is a
		// cut zip by design: check the media type and headers only.
		opts.ExcludeResponseBody = true
		if documented.Value.Content.Get(resp.Header.Get("Content-Type")) == nil {
			tr.t.Errorf("apitest: %s: %d: Content-Type %q is not documented for this status", what, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                opts,
	}
	out.SetBodyBytes(data)
	if err := openapi3filter.ValidateResponse(input.Request.Context(), out); err != nil {
		tr.t.Errorf("apitest: %s: %d: the response does not match the document: %v", what, resp.StatusCode, err)
	}
}

// checkUndocumented checks the answer to a request for a route the
// document does not have: it must be a 4xx problem.
func (tr *transport) checkUndocumented(what, method string, routeErr error, resp *http.Response, data []byte) {
	if resp.StatusCode < 400 || resp.StatusCode > 499 {
		tr.t.Errorf("apitest: %s: %d: the document has no such operation (%v) but the server did not reject it with a 4xx", what, resp.StatusCode, routeErr)
		return
	}
	if method == http.MethodHead {
		return // no body to check
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/problem+json" {
		tr.t.Errorf("apitest: %s: %d: an error response must be application/problem+json, not %q", what, resp.StatusCode, resp.Header.Get("Content-Type"))
		return
	}
	if tr.problem == nil {
		return
	}
	v, err := decodeJSON(data)
	if err == nil {
		err = tr.problem.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors(), openapi3.VisitAsResponse())
	}
	if err != nil {
		tr.t.Errorf("apitest: %s: %d: the body is not a Problem: %v", what, resp.StatusCode, err)
	}
}

func decodeJSON(data []byte) (any, error) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// bearerPresent accepts any "Authorization: Bearer <token>": which keys are
// valid is the server's business, tested on its own.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s := in.SecurityScheme
	if s.Type != "http" || !strings.EqualFold(s.Scheme, "bearer") {
		return in.NewError(fmt.Errorf("apitest: security scheme %q of type %q is not supported", in.SecuritySchemeName, s.Type))
	}
	scheme, token, _ := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return in.NewError(errors.New("no Authorization: Bearer <token> header"))
	}
	return nil
}

// withBody returns a copy of req that reads body.
func withBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(req.Context())
	if len(body) == 0 {
		r.Body, r.GetBody, r.ContentLength = http.NoBody, nil, 0
		return r
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	return r
}

// replay gives back a response body read in full, then the error that
// ended the read, if any.
type replay struct {
	r   *bytes.Reader
	err error
}

func (b *replay) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF && b.err != nil {
		err = b.err
	}
	return n, err
}

func (b *replay) Close() error { return nil }

// expand fills the parameters of a path template.
func expand(template string, params map[string]string) string {
	for k, v := range params {
		template = strings.ReplaceAll(template, "{"+k+"}", v)
	}
	return template
}

func opName(r *routers.Route) string {
	if r.Operation != nil && r.Operation.OperationID != "" {
		return r.Operation.OperationID
	}
	return r.Method + " " + r.Path
}

func statuses(op *openapi3.Operation) []string {
	var out []string
	for code := range op.Responses.Map() {
		out = append(out, code)
	}
	slices.Sort(out)
	return out
}

// CheckRoutes reports, with t.Errorf, every route of the router that the
// document does not have and every operation of the document that the
// router does not have. Gin's ":name" and "*name" segments are read as
// "{name}".
func CheckRoutes(t testing.TB, routes gin.RoutesInfo) {
	t.Helper()
	doc := Load(t)
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, r := range routes {
		served[r.Method+" "+ginPath(r.Path)] = true
	}
	for _, k := range sortedKeys(served) {
		if !documented[k] {
			t.Errorf("apitest: route %s is served but not in the OpenAPI document", k)
		}
	}
	for _, k := range sortedKeys(documented) {
		if !served[k] {
			t.Errorf("apitest: operation %s is in the OpenAPI document but not served", k)
		}
	}
}

// Routes returns the routes of h, which must be a *gin.Engine (what
// handlers.New returns).
func Routes(t testing.TB, h http.Handler) gin.RoutesInfo {
	t.Helper()
	e, ok := h.(*gin.Engine)
	if !ok {
		t.Fatalf("apitest: the handler is a %T, not a *gin.Engine", h)
	}
	return e.Routes()
}

// ginPath turns "/v1/requests/:id" into "/v1/requests/{id}".
func ginPath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
