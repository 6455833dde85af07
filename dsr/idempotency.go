package dsr

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
)

// IdempotencyID is the document id of a caller's key: neither is stored in
// clear.
func IdempotencyID(caller, key string) string {
	h := sha256.Sum256([]byte(caller + "\x00" + key))
	return hex.EncodeToString(h[:])
}

// Fingerprint identifies what an intake asks for (type, regulation,
// identities, corrections and an opt-out's scopes, in any order), to tell a retry from a key reused for something
// else. It is keyed by the blind index, so the stored fingerprint cannot be
// matched against guessed identities.
func (in Intake) Fingerprint(idx *BlindIndex) string {
	return idx.Hash("fingerprint", in.fingerprinted())
}

// Fingerprints returns the intake's fingerprint under each of idx's keys,
// the current first: a retry must match the fingerprint its first attempt
// stored under a previous key.
func (in Intake) Fingerprints(idx *BlindIndex) []string {
	return idx.Lookup("fingerprint", in.fingerprinted())
}

// fingerprinted is what [Intake.Fingerprint] hashes.
func (in Intake) fingerprinted() string {
	parts := []string{string(in.Type), string(in.Regulation)}
	if in.OpenDSR != nil {
		// OpenDSR's access and portability are both an access request.
		parts = append(parts, "opendsr:"+in.OpenDSR.Type)
	}
	ids := make([]string, len(in.Identities))
	for i, id := range in.Identities {
		ids[i] = string(id.Kind) + "=" + id.Value
	}
	for _, c := range in.Corrections {
		ids = append(ids, "correct:"+c.Field+"="+c.Value)
	}
	for _, s := range in.Scopes {
		ids = append(ids, "scope:"+string(s))
	}
	sort.Strings(ids)
	return strings.Join(append(parts, ids...), "\x00")
}
