package opendsr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Version is the version of the specification spoken.
const Version = "2.0"

// The request types (section 6.2).
const (
	TypeAccess      = "access"
	TypePortability = "portability"
	TypeErasure     = "erasure"
)

// Types are the request types, in the specification's order.
var Types = []string{TypeAccess, TypePortability, TypeErasure}

// The statuses (section 8).
const (
	StatusPending    = "pending"
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"
	StatusCancelled  = "cancelled"
)

// IdentityTypes are the identity type keys (section 5.1).
var IdentityTypes = []string{"controller_customer_id", "android_advertising_id", "android_id", "email", "fire_advertising_id",
	"ios_advertising_id", "ios_vendor_id", "microsoft_advertising_id", "microsoft_publisher_id", "roku_publisher_id", "roku_advertising_id"}

// The identity formats (section 5.2): the value itself, or its hex digest.
const (
	FormatRaw    = "raw"
	FormatSHA1   = "sha1"
	FormatMD5    = "md5"
	FormatSHA256 = "sha256"
)

// Formats are the identity formats, in the specification's order.
var Formats = []string{FormatRaw, FormatSHA1, FormatMD5, FormatSHA256}

// Identity is one identity of a request (section 5.3); a discovery
// document's has no value.
type Identity struct {
	Type   string `json:"identity_type"`
	Value  string `json:"identity_value,omitempty"`
	Format string `json:"identity_format"`
}

// Request is a controller's request to a processor (section 7.1.1).
type Request struct {
	Regulation         string                     `json:"regulation,omitempty"`
	SubjectRequestID   string                     `json:"subject_request_id"`
	SubjectRequestType string                     `json:"subject_request_type"`
	SubjectIdentities  []Identity                 `json:"subject_identities,omitempty"`
	SubmittedTime      string                     `json:"submitted_time"`
	APIVersion         string                     `json:"api_version,omitempty"`
	StatusCallbackURLs []string                   `json:"status_callback_urls,omitempty"`
	Extensions         map[string]json.RawMessage `json:"extensions,omitempty"`
}

// CreateResponse is the processor's answer to a request (section 7.3),
// signed in its headers.
type CreateResponse struct {
	ControllerID           string `json:"controller_id"`
	ExpectedCompletionTime string `json:"expected_completion_time"`
	ReceivedTime           string `json:"received_time"`
	EncodedRequest         string `json:"encoded_request"`
	SubjectRequestID       string `json:"subject_request_id"`
}

// StatusResponse is the status of a request (section 8.3), signed in its
// headers.
type StatusResponse struct {
	ControllerID           string `json:"controller_id"`
	ExpectedCompletionTime string `json:"expected_completion_time"`
	SubjectRequestID       string `json:"subject_request_id"`
	RequestStatus          string `json:"request_status"`
	APIVersion             string `json:"api_version,omitempty"`
	ResultsURL             string `json:"results_url,omitempty"`
	ResultsCount           *int64 `json:"results_count,omitempty"`
}

// Callback is the body of a status callback (section 8.6), signed in its
// headers.
type Callback struct {
	ControllerID           string `json:"controller_id"`
	ExpectedCompletionTime string `json:"expected_completion_time"`
	StatusCallbackURL      string `json:"status_callback_url"`
	SubjectRequestID       string `json:"subject_request_id"`
	RequestStatus          string `json:"request_status"`
	ResultsURL             string `json:"results_url,omitempty"`
	ResultsCount           *int64 `json:"results_count,omitempty"`
}

// CancelResponse answers a cancellation (section 9.2), signed in its
// headers.
type CancelResponse struct {
	ControllerID     string `json:"controller_id"`
	SubjectRequestID string `json:"subject_request_id"`
	ReceivedTime     string `json:"received_time"`
	APIVersion       string `json:"api_version,omitempty"`
}

// Discovery is the processor's discovery document (section 6.3).
type Discovery struct {
	APIVersion                   string     `json:"api_version"`
	SupportedIdentities          []Identity `json:"supported_identities"`
	SupportedSubjectRequestTypes []string   `json:"supported_subject_request_types"`
	ProcessorCertificate         string     `json:"processor_certificate"`
}

// ErrorBody is an error answer (sections 7.5, 7.6). Its messages never
// quote an identity.
type ErrorBody struct {
	Error ErrorObject `json:"error"`
}

// ErrorObject is the error of an ErrorBody.
type ErrorObject struct {
	Code    int           `json:"code"`
	Message string        `json:"message,omitempty"`
	Errors  []ErrorDetail `json:"errors,omitempty"`
}

// ErrorDetail is one detail of an ErrorObject.
type ErrorDetail struct {
	Domain  string `json:"domain"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// ErrMalformed is wrapped by every error of [ParseRequest] and [Decode].
var ErrMalformed = errors.New("opendsr: malformed message")

// MaxMessage bounds a message.
const MaxMessage = 256 << 10

// MaxIdentities bounds a request's identities.
const MaxIdentities = 100

// MaxCallbacks bounds a request's status_callback_urls: each change of
// status is POSTed to every one in turn, each waited on up to the
// client's timeout, so thousands (they fit in MaxMessage) would hold a
// worker for hours on every change.
const MaxCallbacks = 10

// Decode parses a message into v. It takes what the specification's own
// examples hold, a trailing comma before } or ], and nothing else beyond
// JSON; fields it does not know are ignored, as the specification's
// extensions ask.
func Decode(data []byte, v any) error {
	if len(data) > MaxMessage {
		return fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxMessage)
	}
	d := json.NewDecoder(bytes.NewReader(dropTrailingCommas(data)))
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// Only white space may follow (More misses a stray } or ]).
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON object", ErrMalformed)
	}
	return nil
}

// dropTrailingCommas removes each comma that, outside strings, follows a
// value and is followed (after white space) by } or ]. A comma after [, {,
// : or another comma is kept, so "[,]" stays the malformed JSON it is.
func dropTrailingCommas(data []byte) []byte {
	out := make([]byte, 0, len(data))
	inString, escaped := false, false
	var last byte // the last byte kept outside strings and white space
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == ',':
			j := i + 1
			for j < len(data) && isSpace(data[j]) {
				j++
			}
			afterValue := last != 0 && last != '[' && last != '{' && last != ',' && last != ':'
			if afterValue && j < len(data) && (data[j] == '}' || data[j] == ']') {
				continue
			}
		}
		if !inString && !isSpace(c) || c == '"' {
			last = c
		}
		out = append(out, c)
	}
	return out
}

// isSpace reports whether c is JSON's white space.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// uuidV4 is a lower-case UUID of version 4 (section 1.1).
var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// ValidID reports whether id is a lower-case version 4 UUID.
func ValidID(id string) bool { return uuidV4.MatchString(id) }

// hexLen is the length of each hashed format's hex digest.
var hexLen = map[string]int{FormatMD5: 32, FormatSHA1: 40, FormatSHA256: 64}

// ParseRequest parses and checks a request: its id a lower-case UUID v4,
// its type and regulation known, at least one identity (each of a known
// type and format; a hashed one a hex digest of its length), its submitted
// time RFC 3339, its callbacks absolute URLs (at most MaxCallbacks). The regulation, required by
// the specification but missing from its own example, is "gdpr" when
// absent. Errors name fields, never values.
func ParseRequest(data []byte) (*Request, error) {
	var r Request
	if err := Decode(data, &r); err != nil {
		return nil, err
	}
	var problems []string
	add := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }
	if r.Regulation == "" {
		r.Regulation = "gdpr"
	}
	if r.Regulation != "gdpr" && r.Regulation != "ccpa" {
		add("regulation must be gdpr or ccpa")
	}
	if !ValidID(r.SubjectRequestID) {
		add("subject_request_id must be a lower-case UUID v4")
	}
	if !slices.Contains(Types, r.SubjectRequestType) {
		add("subject_request_type must be one of %s", strings.Join(Types, ", "))
	}
	if _, err := time.Parse(time.RFC3339, r.SubmittedTime); err != nil {
		add("submitted_time must be an RFC 3339 time")
	}
	switch {
	case len(r.SubjectIdentities) == 0:
		add("subject_identities must hold at least one identity")
	case len(r.SubjectIdentities) > MaxIdentities:
		add("subject_identities must hold at most %d identities", MaxIdentities)
	}
	for i, id := range r.SubjectIdentities {
		if !slices.Contains(IdentityTypes, id.Type) {
			add("subject_identities[%d].identity_type is not one of the specification's", i)
		}
		if !slices.Contains(Formats, id.Format) {
			add("subject_identities[%d].identity_format must be one of %s", i, strings.Join(Formats, ", "))
		}
		v := strings.TrimSpace(id.Value)
		switch n := hexLen[id.Format]; {
		case v == "" || len(v) > 512:
			add("subject_identities[%d].identity_value must hold 1 to 512 characters", i)
		case n > 0 && (len(v) != n || strings.Trim(strings.ToLower(v), "0123456789abcdef") != ""):
			add("subject_identities[%d].identity_value must be the %d hex digits of its %s digest", i, n, id.Format)
		}
	}
	if len(r.StatusCallbackURLs) > MaxCallbacks {
		add("status_callback_urls must hold at most %d URLs", MaxCallbacks)
		r.StatusCallbackURLs = r.StatusCallbackURLs[:MaxCallbacks]
	}
	for i, u := range r.StatusCallbackURLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.User != nil {
			add("status_callback_urls[%d] must be an absolute http(s) URL without credentials", i)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, strings.Join(problems, "; "))
	}
	return &r, nil
}
