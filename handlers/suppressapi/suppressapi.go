// Package suppressapi is the suppression list's HTTP surface under
// /v1/suppressions: the checks segmentation pipelines call before they use
// a person (POST for up to 10,000 identities, GET for one), and the
// suppression key pipelines hash with (admins only). The pipeline role
// (apikey.RolePipeline) may call the checks and the filter, nothing else.
package suppressapi

import (
	"encoding/base64"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/internal/apikey"
)

// MaxCheckBodyBytes is the largest body of a bulk check: 10,000 identities
// of up to 400 bytes each (a 254-character email with its JSON), 4 MiB.
const MaxCheckBodyBytes = 4 << 20

// Deps is what the suppression API needs; all fields are required.
type Deps struct {
	App  *app.Service
	Keys *apikey.Keyring
	Log  *slog.Logger
}

// Checkers are the roles that may check identities (and filter lists):
// every role, the pipeline's included.
var Checkers = []apikey.Role{apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor, apikey.RolePipeline}

// Register adds the check routes and the key's to r, under
// /v1/suppressions behind the API key (httpkit.RequireKey). The list
// routes (filter, export, import) are registered beside them by their own
// Register call.
func Register(r *gin.Engine, d Deps) {
	a := &api{app: d.App, log: d.Log}
	g := r.Group("/v1/suppressions", httpkit.RequireKey(d.Keys))
	checkers := httpkit.RequireRole(Checkers...)
	g.POST("/check", checkers, a.checkMany)
	g.GET("/check", checkers, a.checkOne)
	g.GET("/key", httpkit.RequireRole(apikey.RoleAdmin), a.key)
}

type api struct {
	app *app.Service
	log *slog.Logger
}

// checkBody is the body of POST /v1/suppressions/check.
type checkBody struct {
	Scope      dsr.Scope              `json:"scope"`
	Identities []app.SuppressionQuery `json:"identities"`
}

// checkMany answers which of up to 10,000 identities are suppressed under
// a scope (app.Service.CheckSuppressions).
func (a *api) checkMany(c *gin.Context) {
	var body checkBody
	if !httpkit.DecodeJSON(c, &body, MaxCheckBodyBytes) {
		return
	}
	if body.Identities == nil {
		httpkit.Error(c, a.log, &dsr.ValidationError{Fields: []dsr.FieldError{{Field: "identities", Message: "required: a list of {kind, value} or {hash}"}}})
		return
	}
	res, err := a.app.CheckSuppressions(c.Request.Context(), body.Scope, body.Identities)
	if err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, res)
}

// checkQuery names the query parameters of GET /v1/suppressions/check.
var checkQuery = map[string]bool{"scope": true, "hash": true, "kind": true, "value": true}

// checkOne answers whether one identity is suppressed under a scope, and
// under which scopes it is (app.Service.CheckSuppression). The identity
// is hash=, or kind= and value=, which puts it in clear in URLs that
// proxies log: pipelines should send hashes, or POST.
func (a *api) checkOne(c *gin.Context) {
	q := c.Request.URL.Query()
	var ve dsr.ValidationError
	for _, k := range slices.Sorted(maps.Keys(q)) {
		switch {
		case !checkQuery[k]:
			ve.Add(k, "unknown query parameter (known: %s)", strings.Join(slices.Sorted(maps.Keys(checkQuery)), ", "))
		case len(q[k]) > 1:
			ve.Add(k, "given twice")
		}
	}
	if err := ve.Err(); err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	res, err := a.app.CheckSuppression(c.Request.Context(), dsr.Scope(q.Get("scope")),
		app.SuppressionQuery{Kind: dsr.Kind(q.Get("kind")), Value: q.Get("value"), Hash: q.Get("hash")})
	if err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, res)
}

// KeyAnswer is the answer of GET /v1/suppressions/key (and of `dsar
// suppress key --json`): the key and how to hash with it.
type KeyAnswer struct {
	Key       string              `json:"key"`
	Algorithm string              `json:"algorithm"`
	Recipe    string              `json:"recipe"`
	Normalise map[dsr.Kind]string `json:"normalise"`
	Example   KeyExample          `json:"example"`
}

// KeyExample is a hash computed by the recipe.
type KeyExample struct {
	Kind  dsr.Kind `json:"kind"`
	Value string   `json:"value"`
	Hash  string   `json:"hash"`
}

// key answers the suppression key (base64) and how to hash with it, for
// an admin to hand to a pipeline or partner. The log line names the
// caller, never the key.
func (a *api) key(c *gin.Context) {
	k, err := a.app.SuppressionKey()
	if err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	a.log.InfoContext(c.Request.Context(), "suppression key read", "request_id", httpkit.RequestIDOf(c), "by", httpkit.Caller(c))
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, KeyInfo(k))
}

// KeyInfo returns k (base64), the recipe of a suppression hash and an
// example.
func KeyInfo(k dsr.SuppressionKey) KeyAnswer {
	return KeyAnswer{
		Key:       base64.StdEncoding.EncodeToString(k[:]),
		Algorithm: "HMAC-SHA256",
		Recipe:    `kind + ":" + hex(HMAC-SHA256(key, kind + "\x00" + normalised value)), hex in lower case`,
		Normalise: KeyNormalisation,
		Example:   KeyExample{Kind: dsr.KindEmail, Value: "someone@example.com", Hash: k.Hash(dsr.KindEmail, "someone@example.com")},
	}
}

// KeyNormalisation says, per identity kind, how a value is normalised
// before it is hashed (dsr.Normalize).
var KeyNormalisation = map[dsr.Kind]string{
	dsr.KindEmail:         "trim surrounding white space, then lower-case the whole address",
	dsr.KindPhone:         "E.164: keep + and the digits (drop spaces, dots, dashes, brackets); a leading 00 becomes +",
	dsr.KindCustomerID:    "trim surrounding white space",
	dsr.KindAdvertisingID: "trim surrounding white space, then lower-case (a UUID: 8-4-4-4-12 hex digits)",
	dsr.KindDeviceID:      "trim surrounding white space; lower-case it when it is hex digits and dashes only",
}
