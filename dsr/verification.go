package dsr

import "time"

// MaxVerificationRounds caps the codes sent for one request.
const MaxVerificationRounds = 5

// Verification is the state of a request's identity check.
type Verification struct {
	// Round counts codes sent; each new code replaces the last.
	Round int `bson:"round"`
	// CodeHash is the keyed hash of the 6-digit code, TokenHash the SHA-256
	// of the link token. Neither secret is stored.
	CodeHash  string    `bson:"code_hash"`
	TokenHash string    `bson:"token_hash"`
	ExpiresAt time.Time `bson:"expires_at"`
	SentAt    time.Time `bson:"sent_at"`
	// Tries counts verification attempts, right or wrong, across rounds.
	Tries int `bson:"tries"`
}
