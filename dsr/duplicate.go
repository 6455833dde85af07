package dsr

import (
	"slices"
	"time"
)

// PickDuplicate is the rule of what a new request of type t with hashes,
// received at since or later, duplicates among candidates: the most
// recently received one of type t in one of [DuplicateCandidates], not an
// appeal (a new request is the person's own, never part of an appeal's
// decision), whose proven identities share a hash (of two received at
// once, the later id), or nil.
func PickDuplicate(candidates []Request, hashes []string, t Type, since time.Time) *Request {
	var best *Request
	for i := range candidates {
		c := &candidates[i]
		if c.Type != t || c.ReceivedAt.Before(since) || c.AppealOf != "" || !slices.Contains(DuplicateCandidates, c.Status) ||
			!slices.ContainsFunc(c.ProvenHashes, func(h string) bool { return slices.Contains(hashes, h) }) {
			continue
		}
		if best == nil || c.ReceivedAt.After(best.ReceivedAt) || (c.ReceivedAt.Equal(best.ReceivedAt) && c.ID > best.ID) {
			best = c
		}
	}
	return best
}
