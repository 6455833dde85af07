package drp

import "strconv"

// The states of a request (section 3.02).
const (
	StateOpen       = "open"
	StateInProgress = "in_progress"
	StateFulfilled  = "fulfilled"
	StateRevoked    = "revoked"
	StateDenied     = "denied"
	StateExpired    = "expired"
)

// The reasons a state may carry (section 3.02).
const (
	ReasonNeedUserVerification = "need_user_verification"
	ReasonSuspectedFraud       = "suspected_fraud"
	ReasonInsufVerification    = "insuf_verification"
	ReasonNoMatch              = "no_match"
	ReasonClaimNotCovered      = "claim_not_covered"
	ReasonOutsideJurisdiction  = "outside_jurisdiction"
	ReasonTooManyRequests      = "too_many_requests"
	ReasonOther                = "other"
)

// DenialReasons are the reasons of the denied state.
var DenialReasons = []string{ReasonSuspectedFraud, ReasonInsufVerification, ReasonNoMatch, ReasonClaimNotCovered,
	ReasonOutsideJurisdiction, ReasonTooManyRequests, ReasonOther}

// Status is the exercise status object (section 3.03), answered by every
// endpoint on a request and POSTed to its status_callback. Times are RFC
// 3339 in UTC.
type Status struct {
	RequestID           string `json:"request_id"`
	AgentRequestID      string `json:"agent_request_id,omitempty"`
	Status              string `json:"status"`
	Reason              string `json:"reason,omitempty"`
	ReceivedAt          string `json:"received_at,omitempty"`
	ExpectedBy          string `json:"expected_by,omitempty"`
	ProcessingDetails   string `json:"processing_details,omitempty"`
	UserVerificationURL string `json:"user_verification_url,omitempty"`
	ResultsURL          string `json:"results_url,omitempty"`
	ExpiresAt           string `json:"expires_at,omitempty"`
}

// Error is the protocol's error body (section 3.06): code is the HTTP
// status as a string; fatal says the request will not be processed.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Fatal   bool   `json:"fatal,omitempty"`
}

// NewError returns the error body of HTTP status code.
func NewError(code int, message string, fatal bool) Error {
	return Error{Code: strconv.Itoa(code), Message: message, Fatal: fatal}
}
