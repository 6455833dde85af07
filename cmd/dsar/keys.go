package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dsar-project/dsar/config"
	"github.com/dsar-project/dsar/internal/envelope"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/store/sealedstore"
)

const keysSummary = "make a master key; re-wrap data keys or re-hash the blind index; pin derived keys (dsar keys new|rotate|pin)"

const keysHelp = `Usage: dsar keys <subcommand> [flags]

Personal data is sealed at rest under per-request data keys, each stored
wrapped by a master key (DSAR_MASTER_KEYS: id:base64key,..., the first
active; 'dsar dev' keeps its keys in DSAR_DATA_DIR/master.keys). See
docs/security.md.

Identities are looked up by their blind index (HMAC under
DSAR_BLIND_INDEX_KEY), from which the keys of signed links, forms, the
suppression hashes and the connectors' masks derive.

Subcommands:
  new        print a new master key entry, id:base64key
  rotate     re-wrap every request's data keys under the active master key;
             with --blind-index, re-hash every request's identities under
             DSAR_BLIND_INDEX_KEY
  pin        print DSAR_SUPPRESSION_KEY and DSAR_MASK_KEY, to set before the
             blind index key changes

Run 'dsar keys rotate --help' for its flags and settings.
`

const rotateHelp = `Usage: dsar keys rotate [--blind-index] [--data-dir DIR]

Re-wraps every request's data keys under the active master key (the first
of DSAR_MASTER_KEYS), so that the other keys can be retired. The data itself
is not re-encrypted: only the 61-byte wrapped keys change, one conditional
update per request, while the service runs.

To rotate:
  1. dsar keys new                      prints a new entry, NEW
  2. DSAR_MASTER_KEYS=NEW,OLD...        on every process, restarted: new
                                        requests are sealed under NEW, the
                                        others still open under OLD
  3. dsar keys rotate                   with the same DSAR_MASTER_KEYS
  4. remove OLD from DSAR_MASTER_KEYS   once no backup you may restore still
                                        needs it (a backup's keys are wrapped
                                        under the keys of its day)

It shows its progress on stderr (one line rewritten on a terminal, a line
per tenth otherwise) and ends with a summary. It can be stopped and run
again at any time: keys under the active key already are skipped. It exits
0 when every data key is under the active key, 1 when some are not (under a
master key missing from DSAR_MASTER_KEYS, or changed while it ran: run it
again), 2 on a usage, settings or store error. It prints request ids and key
ids, never keys or personal data.

With --blind-index it re-hashes instead the blind-index hashes of every
request that holds its identities, under DSAR_BLIND_INDEX_KEY, one
conditional update per request. To change the blind index key:
  1. dsar keys pin                      with today's settings; set what it
                                        prints on every process, for good
  2. DSAR_BLIND_INDEX_KEY=NEW (openssl rand -hex 32),
     DSAR_BLIND_INDEX_PREVIOUS_KEYS=OLD on every process, restarted:
                                        new hashes, codes and links are
                                        under NEW; those under OLD still
                                        work
  3. dsar keys rotate --blind-index     with the same settings
  4. remove DSAR_BLIND_INDEX_PREVIOUS_KEYS once what was sent under OLD has
     expired: download links (DSAR_EXPORT_LINK_TTL), task links (their
     task's wait), verification codes (DSAR_VERIFY_CODE_TTL)
It exits as above: 1 when requests changed while read, or hold hashes under
a previous key after the pass (a process not restarted with NEW), or under
none of the keys given (a previous key wrong or missing: keep every key).
Requests stored before sealing (in clear) are re-hashed too.

The store is DSAR_MONGO_URI and DSAR_MONGO_DB; for the embedded store of
'dsar dev', leave DSAR_MONGO_URI unset and pass --data-dir with dev's
DSAR_DATA_DIR, whose master.keys then stands for DSAR_MASTER_KEYS unless it
is set (add the new key as the file's first line, and restart dev), and
whose blind-index.key for DSAR_BLIND_INDEX_KEY.

Besides the store's settings below, it reads DSAR_MASTER_KEYS (or --data-dir's
master.keys); with --blind-index also DSAR_BLIND_INDEX_KEY (or --data-dir's
blind-index.key), DSAR_BLIND_INDEX_PREVIOUS_KEYS, DSAR_SUPPRESSION_KEY,
DSAR_MASK_KEY and DSAR_EXPORT_LINK_TTL.
`

// runKeys runs `dsar keys ...`.
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysHelp)
		return usageError("keys: no subcommand given")
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, keysHelp)
		return nil
	case "new":
		if len(args) > 1 {
			return usageError("keys new: unexpected argument %q", args[1])
		}
		fmt.Fprintln(stdout, envelope.GenerateMasterKey())
		return nil
	case "rotate":
		return keysRotate(ctx, args[1:], stderr, lookupEnv)
	case "pin":
		return keysPin(args[1:], stdout, stderr, lookupEnv)
	}
	fmt.Fprint(stderr, keysHelp)
	return usageError("keys: unknown subcommand %q", args[0])
}

// keysRotate runs `dsar keys rotate`.
func keysRotate(ctx context.Context, args []string, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	cmd := newReadCommand("keys rotate", rotateHelp, "re-wrap the keys in", "the requests collection", stderr, stderr)
	blindIndex := cmd.fs.Bool("blind-index", false, "re-hash the blind index under DSAR_BLIND_INDEX_KEY instead (see above)")
	if err := cmd.parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(lookupEnv)
	if err != nil {
		return exitError{code: exitUsage, err: err}
	}
	var keys indexKeys
	if *blindIndex {
		if len(cfg.BlindIndexPreviousKeys) == 0 {
			return usageError("keys rotate --blind-index: no DSAR_BLIND_INDEX_PREVIOUS_KEYS: give the keys DSAR_BLIND_INDEX_KEY replaced, as every process has them")
		}
		if cfg.SuppressionKey == nil || cfg.MaskKey == nil {
			return usageError("keys rotate --blind-index: set DSAR_SUPPRESSION_KEY and DSAR_MASK_KEY as every process has them (dsar keys pin)")
		}
		if keys, err = loadIndexKeys(cfg, *cmd.dataDir, false); err != nil {
			return usageError("keys rotate --blind-index: %v", err)
		}
	}
	ring := cfg.MasterKeys
	if ring == nil {
		if *cmd.dataDir == "" {
			return usageError("keys rotate: no master keys: set DSAR_MASTER_KEYS (the new key first), or pass --data-dir with dev's DSAR_DATA_DIR")
		}
		if ring, err = readDevKeys(*cmd.dataDir); err != nil {
			return usageError("keys rotate: %v", err)
		}
	}
	st, closeStore, err := openStoreToRead(ctx, cmd.name, cfg, *cmd.dataDir, mongostore.RequestsCollection, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	if *blindIndex {
		r := rehashing{index: keys.index, st: sealedstore.New(st, ring, sealedstore.Options{}), out: stderr, tty: isTerminal(stderr), linkTTL: cfg.ExportLinkTTL}
		return r.run(ctx)
	}
	r := rotation{ring: ring, keys: st, out: stderr, tty: isTerminal(stderr)}
	return r.run(ctx)
}

// readDevKeys reads dev's key file in dir without creating one: a
// mistyped directory must not pass as a fresh key.
func readDevKeys(dir string) (*envelope.Keyring, error) {
	path := filepath.Join(dir, envelope.KeyFileName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no key file %s (is --data-dir the DSAR_DATA_DIR of dsar?): %w", path, err)
	}
	ring, _, err := envelope.LoadOrCreateKeyFile(dir)
	return ring, err
}

// wrappedKeys is what a rotation reads and writes: store.WrappedKeys.
type wrappedKeys interface {
	EachWrappedKeys(ctx context.Context, after string, fn func(id, dataKey, exportKey string) error) error
	SwapWrappedKeys(ctx context.Context, id, oldData, newData, oldExport, newExport string) (bool, error)
}

// rotation re-wraps every request's data keys under ring's active key.
type rotation struct {
	ring *envelope.Keyring
	keys wrappedKeys
	out  io.Writer
	tty  bool

	rewrapped, current, raced int64
	// unknown counts the data keys under a master key missing from ring,
	// by that master key's id.
	unknown map[string]int64
}

func (r *rotation) run(ctx context.Context) error {
	var total int64
	if err := r.keys.EachWrappedKeys(ctx, "", func(string, string, string) error { total++; return nil }); err != nil {
		return exitError{code: exitUsage, err: fmt.Errorf("keys rotate: %w", err)}
	}
	active := r.ring.Active()
	fmt.Fprintf(r.out, "keys rotate: %s requests hold data keys; re-wrapping them under %s\n", thousands(total), active)
	for _, id := range r.ring.IDs()[1:] {
		if keyDate(id) > keyDate(active) {
			fmt.Fprintf(r.out, "keys rotate: warning: %s, made after the active key %s, is not first in the keys: if it is the new key, the order is wrong; everything is being wrapped under %s, which must then stay\n", id, active, active)
		}
	}
	p := &copyProgress{w: r.out, tty: r.tty, coll: "requests", total: total, began: time.Now()}
	r.unknown = map[string]int64{}
	last := ""
	err := r.keys.EachWrappedKeys(ctx, "", func(id, data, export string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.one(ctx, id, data, export); err != nil {
			return err
		}
		last = id
		p.add(1)
		return nil
	})
	p.end()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return exitError{code: exitBroken, err: fmt.Errorf("keys rotate: stopped after request %q: run it again to go on", last)}
		}
		return exitError{code: exitUsage, err: fmt.Errorf("keys rotate: after request %q: %w", last, err)}
	}
	fmt.Fprintf(r.out, "keys rotate: %s re-wrapped, %s under %s already, %s changed while read (run again)\n",
		thousands(r.rewrapped), thousands(r.current), active, thousands(r.raced))
	var missing []string
	for id, n := range r.unknown {
		missing = append(missing, fmt.Sprintf("%s (%s keys)", id, thousands(n)))
	}
	// A process still on an old key (not restarted with the new one first)
	// may have filed requests behind the pass: they are looked for once
	// more, as they would be lost with that key.
	behind, err := r.behind(ctx, active)
	if err != nil {
		return exitError{code: exitUsage, err: fmt.Errorf("keys rotate: checking the keys again: %w", err)}
	}
	switch {
	case len(missing) > 0:
		return exitError{code: exitBroken, err: fmt.Errorf("keys rotate: data keys under master keys not in DSAR_MASTER_KEYS: %s; add them (after the active key) and run again", strings.Join(missing, ", "))}
	case r.raced > 0:
		return exitError{code: exitBroken, err: fmt.Errorf("keys rotate: %d requests changed while read: run it again", r.raced)}
	case behind > 0:
		return exitError{code: exitBroken, err: fmt.Errorf("keys rotate: %d requests filed while it ran are under another key than %s (a process not restarted with %s first in its keys?): restart every process with it first, and run it again", behind, active, active)}
	}
	if others := r.ring.IDs()[1:]; len(others) > 0 {
		fmt.Fprintf(r.out, "keys rotate: every data key is under %s; %s may leave DSAR_MASTER_KEYS once no backup you may restore needs it\n", active, strings.Join(others, ", "))
	}
	return nil
}

// one re-wraps the keys of request id.
func (r *rotation) one(ctx context.Context, id, data, export string) error {
	newData, dataChanged, err := r.rewrap(id, data)
	if err != nil {
		return err
	}
	newExport, exportChanged, err := r.rewrap(id, export)
	if err != nil {
		return err
	}
	if newData == "" && newExport == "" { // under an unknown key: counted
		return nil
	}
	if !dataChanged && !exportChanged {
		r.current++
		return nil
	}
	ok, err := r.keys.SwapWrappedKeys(ctx, id, data, newData, export, newExport)
	if err != nil {
		return err
	}
	if ok {
		r.rewrapped++
	} else {
		r.raced++
	}
	return nil
}

// rewrap returns wrapped re-wrapped under the active key, and whether it
// changed; "" for "" and for a key under a master key ring lacks (counted).
func (r *rotation) rewrap(id, wrapped string) (string, bool, error) {
	if wrapped == "" {
		return "", false, nil
	}
	w, err := envelope.ParseWrapped(wrapped)
	if err != nil {
		return "", false, fmt.Errorf("request %s: %w", id, err)
	}
	if !r.ring.Has(w.KeyID) {
		r.unknown[w.KeyID]++
		return "", false, nil
	}
	nw, changed, err := r.ring.Rewrap(w)
	if err != nil {
		return "", false, fmt.Errorf("request %s: %w", id, err)
	}
	return nw.Encode(), changed, nil
}

// behind counts the requests whose data keys are not all under active
// (and under a key of the ring: the others are counted by the pass).
func (r *rotation) behind(ctx context.Context, active string) (int64, error) {
	var n int64
	under := func(wrapped string) bool {
		if wrapped == "" {
			return true
		}
		w, err := envelope.ParseWrapped(wrapped)
		return err != nil || w.KeyID == active || !r.ring.Has(w.KeyID)
	}
	err := r.keys.EachWrappedKeys(ctx, "", func(_, data, export string) error {
		if !under(data) || !under(export) {
			n++
		}
		return nil
	})
	return n, err
}

// keyDate returns the day in the id of a key that dsar keys new made
// (k20060102-hex), "" for another id.
func keyDate(id string) string {
	day, _, ok := strings.Cut(strings.TrimPrefix(id, "k"), "-")
	if !ok || len(day) != 8 || !strings.HasPrefix(id, "k") || strings.Trim(day, "0123456789") != "" {
		return ""
	}
	return day
}
