package app

import (
	"context"
	"slices"
	"strings"

	"github.com/dsar-project/dsar/dsr"
)

// While the blind index key changes, a request may be stored with its
// hashes under a previous key: every lookup by one identity goes through
// here, with the identity's hashes under every key (dsr.BlindIndex.Lookup).
// With one key, each is one store call, as before.

// openIdentical is OpenIdentical for any of hashes: each request once,
// newest first, at most limit per hash.
func (s *Service) openIdentical(ctx context.Context, hashes []string, t dsr.Type, statuses []dsr.Status, limit int) ([]dsr.Request, error) {
	return s.eachHash(hashes, func(h string) ([]dsr.Request, error) {
		return s.store.OpenIdentical(ctx, h, t, statuses, limit)
	})
}

// unverified is Unverified for any of hashes: each request once, newest
// first.
func (s *Service) unverified(ctx context.Context, hashes []string, t dsr.Type, limit int) ([]dsr.Request, error) {
	return s.eachHash(hashes, func(h string) ([]dsr.Request, error) {
		return s.store.Unverified(ctx, h, t, limit)
	})
}

func (*Service) eachHash(hashes []string, find func(string) ([]dsr.Request, error)) ([]dsr.Request, error) {
	if len(hashes) == 1 {
		return find(hashes[0])
	}
	var out []dsr.Request
	for _, h := range hashes {
		found, err := find(h)
		if err != nil {
			return nil, err
		}
		for _, r := range found {
			if !slices.ContainsFunc(out, func(o dsr.Request) bool { return o.ID == r.ID }) {
				out = append(out, r)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b dsr.Request) int {
		if c := b.ReceivedAt.Compare(a.ReceivedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out, nil
}
