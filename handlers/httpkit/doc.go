// Package httpkit is the toolkit every HTTP surface of dsar shares: strict
// JSON decoding with precise errors (DecodeJSON), problem+json responses and
// the one mapping from errors to statuses (Abort, Error, ProblemOf), API-key
// authentication and roles (RequireKey, RequireRole), the portal's abuse
// limits (Limits) and the middleware every route runs under (RequestID,
// SecurityHeaders, StrictTransport, CORS, AccessLog, Recovery, StorageWatch).
//
// It knows gin and the domain's errors, nothing of any one surface.
package httpkit
