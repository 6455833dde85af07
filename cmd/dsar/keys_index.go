package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/dsar-project/dsar/config"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
)

const pinHelp = `Usage: dsar keys pin [--data-dir DIR]

Prints the settings that pin the keys derived from the blind index key:

  DSAR_SUPPRESSION_KEY=...   the key of the suppression hashes that
                             pipelines and partners hold
  DSAR_MASK_KEY=...          the key of the connectors' deterministic masks

Set both, on every process, before the blind index key changes: they derive
from the oldest blind index key given, and must not change when it leaves
(DSAR_BLIND_INDEX_PREVIOUS_KEYS requires them). Keys already pinned are
printed as they are. The blind index key is DSAR_BLIND_INDEX_KEY (with
DSAR_BLIND_INDEX_PREVIOUS_KEYS), or with --data-dir the key file of 'dsar
dev' under DIR. It prints secrets: write them to your secret store, not to a
shared terminal log. It exits 0, or 2 when no key is configured.
`

// keysPin runs `dsar keys pin`.
func keysPin(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	cmd := newReadCommand("keys pin", pinHelp, "(unused)", "(unused)", stdout, stderr)
	if err := cmd.parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(lookupEnv)
	if err != nil {
		return exitError{code: exitUsage, err: err}
	}
	keys, err := loadIndexKeys(cfg, *cmd.dataDir, false)
	if err != nil {
		return usageError("keys pin: %v", err)
	}
	sk := keys.index.SuppressionKey()
	_, err = fmt.Fprintf(stdout, "DSAR_SUPPRESSION_KEY=%s\nDSAR_MASK_KEY=%s\n", hex.EncodeToString(sk[:]), hex.EncodeToString(keys.mask))
	return err
}

// rehashStore is what a blind-index rotation reads and writes: every
// request (sealed or stored before sealing), each read opened, and their
// hashes swapped.
type rehashStore interface {
	ListRequests(ctx context.Context, f dsr.ListFilter) ([]dsr.Request, *dsr.Cursor, error)
	Request(ctx context.Context, id string) (*dsr.Request, error)
	SwapHashes(ctx context.Context, id string, from, to store.Hashes) (bool, error)
}

// rehashing re-hashes the blind-index hashes of every request that still
// holds its identities under the index's current key.
type rehashing struct {
	index *dsr.BlindIndex
	st    rehashStore
	out   io.Writer
	tty   bool
	// linkTTL is how long a download link works: links signed under a
	// previous key work until then.
	linkTTL time.Duration

	rehashed, current, raced, unreadable, unknown int64
}

func (r *rehashing) run(ctx context.Context) error {
	var total int64
	if err := r.each(ctx, func(string) error { total++; return nil }); err != nil {
		return exitError{code: exitUsage, err: fmt.Errorf("keys rotate: %w", err)}
	}
	fmt.Fprintf(r.out, "keys rotate --blind-index: %s requests hold identities; re-hashing them under the current blind index key\n", thousands(total))
	p := &copyProgress{w: r.out, tty: r.tty, coll: "requests", total: total, began: time.Now()}
	last := ""
	err := r.each(ctx, func(id string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.one(ctx, id); err != nil {
			return err
		}
		last = id
		p.add(1)
		return nil
	})
	p.end()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return exitError{code: exitBroken, err: fmt.Errorf("keys rotate --blind-index: stopped after request %q: run it again to go on", last)}
		}
		return exitError{code: exitUsage, err: fmt.Errorf("keys rotate --blind-index: after request %q: %w", last, err)}
	}
	fmt.Fprintf(r.out, "keys rotate --blind-index: %s re-hashed, %s under the current key already, %s changed while read (run again), %s unreadable (left as they are), %s under none of the keys given\n",
		thousands(r.rehashed), thousands(r.current), thousands(r.raced), thousands(r.unreadable), thousands(r.unknown))
	// A process not restarted with the new key may have written hashes
	// under the old one behind the pass: they are looked for once more.
	behind, err := r.behind(ctx)
	if err != nil {
		return exitError{code: exitUsage, err: fmt.Errorf("keys rotate --blind-index: checking the hashes again: %w", err)}
	}
	switch {
	case r.unknown > 0:
		return exitError{code: exitBroken, err: fmt.Errorf("keys rotate --blind-index: %d requests hold hashes under none of the keys given "+
			"(DSAR_BLIND_INDEX_KEY and DSAR_BLIND_INDEX_PREVIOUS_KEYS): is a previous key wrong or missing? Keep every key until it is found, and run it again", r.unknown)}
	case r.raced > 0:
		return exitError{code: exitBroken, err: fmt.Errorf("keys rotate --blind-index: %d requests changed while read: run it again", r.raced)}
	case behind > 0:
		return exitError{code: exitBroken, err: fmt.Errorf("keys rotate --blind-index: %d requests hold hashes under a previous key after the pass "+
			"(a process not restarted with the new DSAR_BLIND_INDEX_KEY?): restart every process with it, and run it again", behind)}
	}
	if r.unreadable > 0 {
		// Their hashes stay under a previous key: once it leaves, they
		// are found by nobody, even if their master key comes back.
		fmt.Fprintf(r.out, "keys rotate --blind-index: %d unreadable requests keep their hashes under a previous key: once it leaves DSAR_BLIND_INDEX_PREVIOUS_KEYS "+
			"they are found by no lookup; make them readable (their master key in DSAR_MASTER_KEYS) and run it again, or accept that\n", r.unreadable)
	}
	what := "every hash is under the current key"
	if r.unreadable > 0 {
		what = "every hash of a readable request is under the current key"
	}
	fmt.Fprintf(r.out, "keys rotate --blind-index: %s; DSAR_BLIND_INDEX_PREVIOUS_KEYS may be emptied once the links and codes "+
		"sent under the previous keys have expired: download links after DSAR_EXPORT_LINK_TTL (%s), task links when their task's wait ends. "+
		"Keep DSAR_SUPPRESSION_KEY and DSAR_MASK_KEY as they are.\n", what, r.linkTTL)
	return nil
}

// each calls fn with the id of every request that holds identities, newest
// first: sealed, or stored before sealing (in clear, without a data key),
// whose hashes are as much in use; not those purged.
func (r *rehashing) each(ctx context.Context, fn func(id string) error) error {
	f := dsr.ListFilter{Sort: dsr.SortNewest, Limit: 100}
	for {
		page, next, err := r.st.ListRequests(ctx, f)
		if err != nil {
			return err
		}
		for _, req := range page {
			if req.PurgedAt != nil || len(req.Identities) == 0 { // nothing to hash
				continue
			}
			if err := fn(req.ID); err != nil {
				return err
			}
		}
		if next == nil {
			return nil
		}
		f.After = next
	}
}

// one re-hashes request id.
func (r *rehashing) one(ctx context.Context, id string) error {
	req, err := r.st.Request(ctx, id)
	switch {
	case errors.Is(err, dsr.ErrNotFound):
		return nil // deleted meanwhile
	case errors.Is(err, dsr.ErrUnreadable):
		r.unreadable++
		return nil
	case err != nil:
		return fmt.Errorf("request %s: %w", id, err)
	}
	from := store.Hashes{Identity: req.IdentityHashes, Proven: req.ProvenHashes}
	to, changed := r.rehash(req)
	if cur := r.index.HashAll(req.Identities); len(to.Identity) > 0 && !slices.ContainsFunc(to.Identity, func(h string) bool { return slices.Contains(cur, h) }) {
		// Hashes under none of the keys given (a wrong or missing
		// previous key): unchanged, and never to be counted current.
		r.unknown++
		return nil
	}
	if !changed {
		r.current++
		return nil
	}
	ok, err := r.st.SwapHashes(ctx, id, from, to)
	if err != nil {
		return fmt.Errorf("request %s: %w", id, err)
	}
	if ok {
		r.rehashed++
	} else {
		r.raced++
	}
	return nil
}

// rehash returns req's hashes with those under a previous key replaced by
// the same identity's under the current key, and whether any was. A hash
// of no identity req holds is kept as it is.
func (r *rehashing) rehash(req *dsr.Request) (store.Hashes, bool) {
	m := r.index.Rehash(req.Identities)
	changed := false
	swap := func(hs []string) []string {
		var out []string
		for _, h := range hs {
			if cur, ok := m[h]; ok {
				h, changed = cur, true
			}
			if !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
		return out
	}
	to := store.Hashes{Identity: swap(req.IdentityHashes), Proven: swap(req.ProvenHashes)}
	return to, changed
}

// behind counts the requests that still hold a hash under a previous key.
func (r *rehashing) behind(ctx context.Context) (int64, error) {
	var n int64
	err := r.each(ctx, func(id string) error {
		req, err := r.st.Request(ctx, id)
		if errors.Is(err, dsr.ErrNotFound) || errors.Is(err, dsr.ErrUnreadable) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("request %s: %w", id, err)
		}
		if _, changed := r.rehash(req); changed {
			n++
		}
		return nil
	})
	return n, err
}
