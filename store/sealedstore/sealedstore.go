// Package sealedstore seals the personal fields of any driver's store at
// rest: it is a [store.Store] around another, which encrypts what it is
// given before the driver sees it and decrypts what the driver returns, so
// the drivers, the application and the workers are unchanged.
//
// Each request created through it gets two random data keys
// (internal/envelope), stored only wrapped under the active master key of
// a [envelope.Keyring]: Request.DataKey seals the subject's identity values,
// the authorised agent's name and email, the agent's note and a
// correction's new values on the request, and the identity values and
// answers of its jobs; Request.ExportKey seals every record of its exports.
// Sealed values are AES-256-GCM ciphertexts bound to their field, stored
// base64 (standard, unpadded) in the field's place; an export kept in the
// store's export records is sealed in chunks of records, compressed, each
// stored as a JSON string (see export.go).
//
// What stays in clear, because the drivers query it or it names no
// person: identity kinds and sources, the blind index (identity_hashes,
// proven_hashes: keyed HMACs), statuses, dates, the history with agents'
// reasons, the names of the systems and collections exported, and the
// collection names of export records.
//
// The drivers' purges shred: purging a request's identities removes its
// wrapped DataKey, purging its exports its ExportKey, after which every copy
// of what they sealed, in a backup too, is unreadable. A request stored
// before sealing (no DataKey) is read and written in clear, as before;
// one without a DataKey that holds values of a sealed value's form (its
// key deleted behind the store) is an error, never read as clear.
//
// What does not open (a value altered or moved, a key removed) is an
// error naming the request or job; the sweep's scans (EachStaleRequest,
// EachStaleJob...) give it with its values withheld and go on, returning
// the error when they end, and ListRequests lists it so.
package sealedstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/envelope"
	"github.com/dsar-project/dsar/store"
)

// cachedKeys bounds the unwrapped data keys a Store keeps in memory (two
// per recently used request): about 10,000 requests, 1 MiB.
const cachedKeys = 20_000

// Store seals the personal fields of the store it wraps. Every method of
// [store.Store] it does not define is the wrapped store's own, and passes
// no personal data.
type Store struct {
	store.Store
	ring    *envelope.Keyring
	objects Objects
	// keys holds unwrapped data keys by "d:"+request id (DataKey) and
	// "x:"+request id (ExportKey), so a request's key is unwrapped (and,
	// when only an id is at hand, its request read) once per process while
	// it is used.
	keys *lru.Cache[string, *envelope.DataKey]
	// chunkBytes, when set, replaces the const chunkBytes (tests).
	chunkBytes int
}

// Options are a Store's choices beyond its keys.
type Options struct {
	// Exports, when set, keeps each export as one encrypted object there
	// (store/s3exports) instead of the store's export records.
	Exports Objects
}

// Objects is an object store for exports (store/s3exports.Bucket): Put
// replaces, Get of a missing object is an error that Missing recognises,
// Remove and RemovePrefix of nothing are no error.
type Objects interface {
	Put(ctx context.Context, name string, r io.Reader, size int64) error
	Get(ctx context.Context, name string) (io.ReadCloser, error)
	Remove(ctx context.Context, name string) error
	RemovePrefix(ctx context.Context, prefix string) error
	Missing(err error) bool
}

// New returns inner sealed under ring's master keys: requests created
// through it are sealed with fresh data keys wrapped under ring's active
// key; any key of ring opens what was sealed before.
func New(inner store.Store, ring *envelope.Keyring, opts Options) *Store {
	keys, err := lru.New[string, *envelope.DataKey](cachedKeys)
	if err != nil {
		panic(err) // only for a size <= 0
	}
	return &Store{Store: inner, ring: ring, objects: opts.Exports, keys: keys}
}

// Inner returns the store it wraps.
func (s *Store) Inner() store.Store { return s.Store }

// A sealed value is bound (its aad) to its field and to the id of the
// request or job that holds it: a value moved to another field, request or
// job does not open, even with that one's wrapped key copied beside it.
// An appeal, which copies the identities and new values of the request it
// appeals, gets keys of its own and the copies sealed afresh (Appeal).
const (
	fieldIdentity    = "identity"
	fieldNote        = "note"
	fieldAgentName   = "agent.name"
	fieldAgentEmail  = "agent.email"
	fieldJobIdentity = "job.identity"
	fieldAnswer      = "job.answer"
)

func fieldNewValue(field string) string { return "new_value\x00" + field }

// aad is what a value of field held by id is sealed with.
func aad(field, id string) []byte { return []byte("dsar/sealed/v1\x00" + field + "\x00" + id) }

var b64 = base64.RawStdEncoding

// sealString seals v; "" stays "" (that a field is empty is no secret).
func sealString(dk *envelope.DataKey, v, field, id string) (string, error) {
	if v == "" {
		return "", nil
	}
	c, err := envelope.Seal(dk, []byte(v), aad(field, id))
	if err != nil {
		return "", err
	}
	return b64.EncodeToString(c), nil
}

// openString opens v, a value of field held by id.
func openString(dk *envelope.DataKey, v, field, id string) (string, error) {
	if v == "" {
		return "", nil
	}
	c, err := b64.DecodeString(v)
	if err != nil {
		return "", errors.New("not a sealed value (base64)")
	}
	p, err := envelope.Open(dk, c, aad(field, id))
	if err != nil {
		return "", err
	}
	return string(p), nil
}

// sealIdentities seals the values of ids, held as field by id.
func sealIdentities(dk *envelope.DataKey, ids []dsr.Identity, field, id string) ([]dsr.Identity, error) {
	if ids == nil {
		return nil, nil
	}
	out := make([]dsr.Identity, len(ids))
	for i, x := range ids {
		v, err := sealString(dk, x.Value, field, id)
		if err != nil {
			return nil, fmt.Errorf("seal identity %d: %w", i, err)
		}
		out[i] = dsr.Identity{Kind: x.Kind, Value: v, Source: x.Source}
	}
	return out, nil
}

// openIdentities opens ids in place (they are the caller's fresh copy),
// held as field by holder.
func openIdentities(dk *envelope.DataKey, ids []dsr.Identity, field, holder string) error {
	for i := range ids {
		v, err := openString(dk, ids[i].Value, field, holder)
		if err != nil {
			return fmt.Errorf("identity %d: %w", i, err)
		}
		ids[i].Value = v
	}
	return nil
}

// sealRequest returns a copy of r with its personal fields sealed under dk;
// r is left as it is.
func sealRequest(dk *envelope.DataKey, r *dsr.Request) (*dsr.Request, error) {
	c := *r
	var err error
	if c.Identities, err = sealIdentities(dk, r.Identities, fieldIdentity, r.ID); err != nil {
		return nil, err
	}
	if c.Note, err = sealString(dk, r.Note, fieldNote, r.ID); err != nil {
		return nil, fmt.Errorf("seal note: %w", err)
	}
	if r.Agent != nil {
		a := *r.Agent
		if a.Name, err = sealString(dk, a.Name, fieldAgentName, r.ID); err != nil {
			return nil, fmt.Errorf("seal agent: %w", err)
		}
		if a.Email, err = sealString(dk, a.Email, fieldAgentEmail, r.ID); err != nil {
			return nil, fmt.Errorf("seal agent: %w", err)
		}
		c.Agent = &a
	}
	if r.NewValues != nil {
		c.NewValues = make(map[string]string, len(r.NewValues))
		for f, v := range r.NewValues {
			if c.NewValues[f], err = sealString(dk, v, fieldNewValue(f), r.ID); err != nil {
				return nil, fmt.Errorf("seal new value: %w", err)
			}
		}
	}
	return &c, nil
}

// openRequest opens r's sealed fields in place. A request without a data
// key is in clear (stored before sealing, or purged) and left as it is.
// Its errors are dsr.ErrUnreadable.
func (s *Store) openRequest(r *dsr.Request) error {
	if err := s.openRequestFields(r); err != nil {
		if !errors.Is(err, dsr.ErrUnreadable) {
			err = fmt.Errorf("%w: %w", dsr.ErrUnreadable, err)
		}
		return err
	}
	return nil
}

func (s *Store) openRequestFields(r *dsr.Request) error {
	if r == nil {
		return nil
	}
	if r.DataKey == "" {
		r.ExportKey = ""
		if requestLooksSealed(r) {
			return fmt.Errorf("request %s: %w", r.ID, errNoDataKey)
		}
		return nil
	}
	dk, err := s.dataKey(r.ID, r.DataKey, "d:")
	if err != nil {
		return fmt.Errorf("request %s: %w", r.ID, err)
	}
	fail := func(what string, err error) error {
		return fmt.Errorf("request %s: open %s: %w", r.ID, what, err)
	}
	if err := openIdentities(dk, r.Identities, fieldIdentity, r.ID); err != nil {
		return fail("identities", err)
	}
	if r.Note, err = openString(dk, r.Note, fieldNote, r.ID); err != nil {
		return fail("note", err)
	}
	if r.Agent != nil {
		if r.Agent.Name, err = openString(dk, r.Agent.Name, fieldAgentName, r.ID); err != nil {
			return fail("agent", err)
		}
		if r.Agent.Email, err = openString(dk, r.Agent.Email, fieldAgentEmail, r.ID); err != nil {
			return fail("agent", err)
		}
	}
	for f, v := range r.NewValues {
		if r.NewValues[f], err = openString(dk, v, fieldNewValue(f), r.ID); err != nil {
			return fail("new values", err)
		}
	}
	// The export key is unwrapped when an export is read or written, not
	// on every read of the request. The wrapped keys are this package's business: callers see the
	// request as a store in clear shows it.
	r.DataKey, r.ExportKey = "", ""
	return nil
}

// errNoDataKey: a request, job or export holds sealed values but its
// request has no data key to open them (the key was removed from the
// store behind the service). Its values must not be taken for clear ones:
// a connector would be sent ciphertexts as identities, and new values
// would be written in clear.
var errNoDataKey = fmt.Errorf("%w: it holds sealed values but no data key (removed from the store?)", dsr.ErrUnreadable)

// looksSealed reports whether v has the form of a sealed value: base64 of
// a version 1 seal, of at least its overhead. Clear values (emails, phone
// numbers, customer ids, names, notes) practically never have it: they
// would have to be 40 or more base64 characters, without a space, '@',
// '.', '_' or '-', starting with "AQ" to "Af".
func looksSealed(v string) bool {
	if len(v) < b64.EncodedLen(envelope.SealOverhead) {
		return false
	}
	c, err := b64.DecodeString(v)
	return err == nil && c[0] == 0x01
}

func identitiesLookSealed(ids []dsr.Identity) bool {
	for _, id := range ids {
		if looksSealed(id.Value) {
			return true
		}
	}
	return false
}

// requestLooksSealed reports whether a request without a data key holds a
// value that looks sealed.
func requestLooksSealed(r *dsr.Request) bool {
	if identitiesLookSealed(r.Identities) || looksSealed(r.Note) {
		return true
	}
	if r.Agent != nil && (looksSealed(r.Agent.Name) || looksSealed(r.Agent.Email)) {
		return true
	}
	for _, v := range r.NewValues {
		if looksSealed(v) {
			return true
		}
	}
	return false
}

// dataKey unwraps wrapped, the key of request id under prefix ("d:" data,
// "x:" export), or takes it from the cache.
func (s *Store) dataKey(id, wrapped, prefix string) (*envelope.DataKey, error) {
	if dk, ok := s.keys.Get(prefix + id); ok {
		return dk, nil
	}
	w, err := envelope.ParseWrapped(wrapped)
	if err != nil {
		return nil, err
	}
	dk, err := s.ring.Unwrap(w)
	if err != nil {
		return nil, err
	}
	s.keys.Add(prefix+id, dk)
	return dk, nil
}

// requestKey returns the key of request id under prefix, reading the
// request when it is not cached; nil when the request is in clear (or
// purged).
func (s *Store) requestKey(ctx context.Context, id, prefix string) (*envelope.DataKey, error) {
	dk, _, err := s.requestKeyOr(ctx, id, prefix)
	return dk, err
}

// requestKeyOr is requestKey, and says when there is no key because what
// it sealed was purged (the identities for "d:", the exports for "x:"),
// as opposed to a request stored in clear. A failed read of the store is
// returned as it is; a key that does not unwrap is dsr.ErrUnreadable.
func (s *Store) requestKeyOr(ctx context.Context, id, prefix string) (dk *envelope.DataKey, purged bool, err error) {
	if dk, ok := s.keys.Get(prefix + id); ok {
		return dk, false, nil
	}
	r, err := s.Store.Request(ctx, id)
	if err != nil {
		return nil, false, err
	}
	wrapped, purged := r.DataKey, r.PurgedAt != nil
	if prefix == "x:" {
		wrapped, purged = r.ExportKey, r.ExportsPurgedAt != nil
	}
	if wrapped == "" {
		if r.DataKey == "" && r.PurgedAt == nil && requestLooksSealed(r) {
			return nil, false, fmt.Errorf("request %s: %w", id, errNoDataKey)
		}
		return nil, purged, nil
	}
	if dk, err = s.dataKey(id, wrapped, prefix); err != nil {
		return nil, false, fmt.Errorf("%w: request %s: %w", dsr.ErrUnreadable, id, err)
	}
	return dk, false, nil
}

// sealNew returns a copy of r with fresh data keys (wrapped) and its
// personal fields sealed, and the keys unwrapped; r is left as it is.
func (s *Store) sealNew(r *dsr.Request) (*dsr.Request, [2]*envelope.DataKey, error) {
	keys := [2]*envelope.DataKey{envelope.NewDataKey(), envelope.NewDataKey()}
	fail := func(err error) (*dsr.Request, [2]*envelope.DataKey, error) {
		return nil, keys, fmt.Errorf("request %s: %w", r.ID, err)
	}
	sealed, err := sealRequest(keys[0], r)
	if err != nil {
		return fail(err)
	}
	for i, dk := range keys {
		w, err := s.ring.Wrap(dk)
		if err != nil {
			return fail(fmt.Errorf("data key: %w", err))
		}
		if i == 0 {
			sealed.DataKey = w.Encode()
		} else {
			sealed.ExportKey = w.Encode()
		}
	}
	return sealed, keys, nil
}

// remember caches the keys of request id, once it is stored with them.
func (s *Store) remember(id string, keys [2]*envelope.DataKey) {
	s.keys.Add("d:"+id, keys[0])
	s.keys.Add("x:"+id, keys[1])
}

// CreateRequest stores r with fresh data keys and its personal fields
// sealed; r is left as it is.
func (s *Store) CreateRequest(ctx context.Context, r *dsr.Request) error {
	sealed, keys, err := s.sealNew(r)
	if err != nil {
		return err
	}
	if err := s.Store.CreateRequest(ctx, sealed); err != nil {
		return err
	}
	s.remember(r.ID, keys)
	takeBack(r, sealed)
	return nil
}

// takeBack gives r what the driver set on sealed, the copy it stored (a
// driver may record on the request it is given what it did: the audit
// events it wrote), keeping r's clear values.
func takeBack(r, sealed *dsr.Request) {
	plain := *r
	*r = *sealed
	r.Identities, r.Note, r.Agent, r.NewValues = plain.Identities, plain.Note, plain.Agent, plain.NewValues
	r.DataKey, r.ExportKey = "", ""
}

// CreateRequests is CreateRequest for each of reqs, in one call to the
// driver; errs[i] is reqs[i]'s.
func (s *Store) CreateRequests(ctx context.Context, reqs []*dsr.Request) []error {
	sealed := make([]*dsr.Request, len(reqs))
	keys := make([][2]*envelope.DataKey, len(reqs))
	for i, r := range reqs {
		var err error
		if sealed[i], keys[i], err = s.sealNew(r); err != nil {
			errs := make([]error, len(reqs))
			for j := range errs {
				errs[j] = err
			}
			return errs
		}
	}
	errs := s.Store.CreateRequests(ctx, sealed)
	for i, r := range reqs {
		if i < len(errs) && errs[i] == nil {
			s.remember(r.ID, keys[i])
			takeBack(r, sealed[i])
		}
	}
	return errs
}

// opened opens r as a read returns it.
func (s *Store) opened(r *dsr.Request, err error) (*dsr.Request, error) {
	if err != nil {
		if r != nil && s.openRequest(r) != nil { // a driver's answer beside its error
			withhold(r)
		}
		return r, err
	}
	if err := s.openRequest(r); err != nil {
		return nil, err
	}
	return r, nil
}

func (s *Store) openedAll(rs []dsr.Request, err error) ([]dsr.Request, error) {
	if err != nil {
		return rs, err
	}
	for i := range rs {
		if err := s.openRequest(&rs[i]); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// skipped counts what a scan could not open, so that the scan goes on:
// one request that does not open (tampered, or its master key gone) must
// not stop the sweep for every request after it.
type skipped struct {
	n     int
	first error
}

func (k *skipped) add(err error) {
	if k.n == 0 {
		k.first = err
	}
	k.n++
}

// join returns err (the scan's own) and what was skipped.
func (k *skipped) join(what string, err error) error {
	if k.n == 0 {
		return err
	}
	return errors.Join(err, fmt.Errorf("%d %s not opened, their values withheld; first: %w", k.n, what, k.first))
}

// eachOpened runs scan with fn given requests opened. A request that does
// not open is given with its values withheld (the sweep acts on ids,
// statuses and dates: it still expires it, which purges it, catches up its
// audit chain and queues its notices), and reported in the error once the
// scan has ended.
func (s *Store) eachOpened(scan func(func(*dsr.Request) error) error, fn func(*dsr.Request) error) error {
	var k skipped
	err := scan(func(r *dsr.Request) error {
		if err := s.openRequest(r); err != nil {
			k.add(err)
			withhold(r)
		}
		return fn(r)
	})
	return k.join("requests", err)
}

func (s *Store) Request(ctx context.Context, id string) (*dsr.Request, error) {
	return s.opened(s.Store.Request(ctx, id))
}

// ListRequests opens the requests of the page; one that does not open
// comes with its sealed values withheld (empty) rather than failing the
// page: a list shows requests' heads, never their values (GET
// /v1/requests, the console's queue), and one unreadable request must not
// hide every other from the agents who would deal with it. Reading it
// alone (Request) is the error.
func (s *Store) ListRequests(ctx context.Context, f dsr.ListFilter) ([]dsr.Request, *dsr.Cursor, error) {
	rs, cur, err := s.Store.ListRequests(ctx, f)
	if err != nil {
		return rs, cur, err
	}
	for i := range rs {
		if err := s.openRequest(&rs[i]); err != nil {
			withhold(&rs[i])
		}
	}
	return rs, cur, nil
}

// withhold empties r's sealed values (keeping the identities' kinds and
// sources), and its wrapped keys.
func withhold(r *dsr.Request) {
	for i := range r.Identities {
		r.Identities[i].Value = ""
	}
	r.Note, r.Agent, r.DataKey, r.ExportKey = "", nil, "", ""
	for f := range r.NewValues {
		r.NewValues[f] = ""
	}
}

// Transition seals the identities c sets, under request id's data key. A
// request moved that then does not open is returned with its values
// withheld, not as an error: the move happened (a request that cannot be
// read must still reach needs_attention); what reads it next fails.
func (s *Store) Transition(ctx context.Context, id string, from, to dsr.Status, c dsr.Change) (*dsr.Request, error) {
	if c.Identities != nil {
		ids, err := s.sealFor(ctx, id, c.Identities)
		if err != nil {
			return nil, err
		}
		c.Identities = ids
	}
	r, err := s.Store.Transition(ctx, id, from, to, c)
	if err == nil && c.Purge {
		s.keys.Remove("d:" + id) // the driver removed the wrapped key with the identities
	}
	return s.moved(r, err)
}

// sealFor seals ids under request id's data key: as they are when the
// request is stored in clear.
func (s *Store) sealFor(ctx context.Context, id string, ids []dsr.Identity) ([]dsr.Identity, error) {
	dk, err := s.requestKey(ctx, id, "d:")
	if err != nil || dk == nil {
		return ids, err
	}
	sealed, err := sealIdentities(dk, ids, fieldIdentity, id)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", id, err)
	}
	return sealed, nil
}

func (s *Store) Assign(ctx context.Context, id, agent string) (*dsr.Request, error) {
	return s.moved(s.Store.Assign(ctx, id, agent))
}

// moved opens r as a change returns it: one that does not open is
// returned with its values withheld, not as an error, since the change
// was stored (its caller records it, audits it, sends its notices); what
// reads the request next fails.
func (s *Store) moved(r *dsr.Request, err error) (*dsr.Request, error) {
	if err != nil {
		return s.opened(r, err)
	}
	if err := s.openRequest(r); err != nil {
		withhold(r)
	}
	return r, nil
}

// Appeal hashes an attestation's identities here, where they can be read
// (the driver holds them sealed), and has the driver seal the appeal's
// copies of the denied request's values afresh, under keys of its own.
func (s *Store) Appeal(ctx context.Context, id string, f dsr.AppealFiling) (*dsr.Request, error) {
	if f.Attested != "" && f.Index != nil {
		// Read as the driver holds it: opening clears DataKey, which says
		// whether the identities are sealed.
		denied, err := s.Store.Request(ctx, id)
		if err != nil {
			return nil, err
		}
		if denied.DataKey != "" {
			if denied, err = s.opened(denied, nil); err != nil {
				return nil, err
			}
			f.AttestedHashes = f.Index.HashAll(dsr.Given(denied.Identities))
			f.Index = nil
		}
	}
	var keys [2]*envelope.DataKey
	f.Reseal = func(denied, appeal *dsr.Request) error {
		var err error
		keys, err = s.resealAppeal(denied, appeal)
		return err
	}
	a, err := s.Store.Appeal(ctx, id, f)
	if err == nil && keys[0] != nil {
		s.remember(a.ID, keys)
	}
	return s.opened(a, err)
}

// resealAppeal opens the values appeal copied from denied (bound to
// denied's id, under its data key) and seals them afresh, bound to the
// appeal's id, under new keys of its own, which it returns: values are
// never opened bound to another request's id. The appeal of a request
// stored in clear is sealed too.
func (s *Store) resealAppeal(denied, appeal *dsr.Request) ([2]*envelope.DataKey, error) {
	if denied.DataKey == "" {
		// Stored in clear (before sealing): its copies are clear, and
		// sealed now like a new request's.
		if requestLooksSealed(appeal) {
			return [2]*envelope.DataKey{}, fmt.Errorf("request %s: %w", denied.ID, errNoDataKey)
		}
		sealed, keys, err := s.sealNew(appeal)
		if err == nil {
			*appeal = *sealed
		}
		return keys, err
	}
	dk, err := s.dataKey(denied.ID, denied.DataKey, "d:")
	if err != nil {
		return [2]*envelope.DataKey{}, fmt.Errorf("%w: request %s: %w", dsr.ErrUnreadable, denied.ID, err)
	}
	plain := *appeal
	plain.Identities = slices.Clone(appeal.Identities)
	if err := openIdentities(dk, plain.Identities, fieldIdentity, denied.ID); err != nil {
		return [2]*envelope.DataKey{}, fmt.Errorf("%w: request %s: open identities: %w", dsr.ErrUnreadable, denied.ID, err)
	}
	plain.NewValues = maps.Clone(appeal.NewValues)
	for f, v := range plain.NewValues {
		if plain.NewValues[f], err = openString(dk, v, fieldNewValue(f), denied.ID); err != nil {
			return [2]*envelope.DataKey{}, fmt.Errorf("%w: request %s: open new values: %w", dsr.ErrUnreadable, denied.ID, err)
		}
	}
	sealed, keys, err := s.sealNew(&plain)
	if err != nil {
		return keys, err
	}
	*appeal = *sealed
	return keys, nil
}

func (s *Store) Extend(ctx context.Context, id, actor, reason string) (*dsr.Request, error) {
	return s.moved(s.Store.Extend(ctx, id, actor, reason))
}

func (s *Store) PauseClock(ctx context.Context, id, actor, reason string) (*dsr.Request, error) {
	return s.moved(s.Store.PauseClock(ctx, id, actor, reason))
}

func (s *Store) ResumeClock(ctx context.Context, id string) (*dsr.Request, error) {
	return s.moved(s.Store.ResumeClock(ctx, id))
}

func (s *Store) OpenDuplicates(ctx context.Context, hashes []string, types []dsr.Type, since time.Time) ([]dsr.Request, error) {
	return s.openedAll(s.Store.OpenDuplicates(ctx, hashes, types, since))
}

func (s *Store) OpenIdentical(ctx context.Context, hash string, t dsr.Type, statuses []dsr.Status, limit int) ([]dsr.Request, error) {
	return s.openedAll(s.Store.OpenIdentical(ctx, hash, t, statuses, limit))
}

func (s *Store) Unverified(ctx context.Context, hash string, t dsr.Type, limit int) ([]dsr.Request, error) {
	return s.openedAll(s.Store.Unverified(ctx, hash, t, limit))
}

func (s *Store) ReserveTry(ctx context.Context, id string, max int) (*dsr.Request, error) {
	return s.opened(s.Store.ReserveTry(ctx, id, max))
}

// FanoutFailed records the failure; a request that does not open is
// returned with its values withheld, not as an error: the failure is
// recorded, and its caller counts failures to move the request to
// needs_attention, which a request that cannot be read must reach.
func (s *Store) FanoutFailed(ctx context.Context, id, msg string) (*dsr.Request, error) {
	return s.moved(s.Store.FanoutFailed(ctx, id, msg))
}

// HoldForHook seals ids (the identities the hook's hold sets).
func (s *Store) HoldForHook(ctx context.Context, id string, until time.Time, ids []dsr.Identity, hashes []string) (*dsr.Request, error) {
	ids, err := s.sealFor(ctx, id, ids)
	if err != nil {
		return nil, err
	}
	return s.moved(s.Store.HoldForHook(ctx, id, until, ids, hashes))
}

// ResumeHook seals ids (the identities the hook's answer sets).
func (s *Store) ResumeHook(ctx context.Context, id, msgID string, ids []dsr.Identity, hashes []string) (*dsr.Request, error) {
	ids, err := s.sealFor(ctx, id, ids)
	if err != nil {
		return nil, err
	}
	return s.moved(s.Store.ResumeHook(ctx, id, msgID, ids, hashes))
}

func (s *Store) EachStaleRequest(ctx context.Context, before time.Time, fn func(*dsr.Request) error) error {
	return s.eachOpened(func(fn func(*dsr.Request) error) error { return s.Store.EachStaleRequest(ctx, before, fn) }, fn)
}

func (s *Store) EachUnverifiedPastDue(ctx context.Context, now time.Time, fn func(*dsr.Request) error) error {
	return s.eachOpened(func(fn func(*dsr.Request) error) error { return s.Store.EachUnverifiedPastDue(ctx, now, fn) }, fn)
}

func (s *Store) EachPendingNotice(ctx context.Context, before time.Time, fn func(*dsr.Request) error) error {
	return s.eachOpened(func(fn func(*dsr.Request) error) error { return s.Store.EachPendingNotice(ctx, before, fn) }, fn)
}

func (s *Store) EachAuditDue(ctx context.Context, before time.Time, fn func(*dsr.Request) error) error {
	return s.eachOpened(func(fn func(*dsr.Request) error) error { return s.Store.EachAuditDue(ctx, before, fn) }, fn)
}

// PurgeIdentities purges, and forgets the request's data key here too.
func (s *Store) PurgeIdentities(ctx context.Context, id string) (bool, error) {
	done, err := s.Store.PurgeIdentities(ctx, id)
	if err == nil {
		s.keys.Remove("d:" + id)
	}
	return done, err
}

// PurgeExports purges, and forgets the request's export key here too. With
// an object store, the request's objects go first: while they cannot be
// deleted the purge fails, and the retention check tries it again.
func (s *Store) PurgeExports(ctx context.Context, id string) (bool, error) {
	if s.objects != nil {
		if err := s.objects.RemovePrefix(ctx, objectPrefix(id)); err != nil {
			return false, fmt.Errorf("purge exports: %w", err)
		}
	}
	done, err := s.Store.PurgeExports(ctx, id)
	if err == nil {
		s.keys.Remove("x:" + id)
	}
	return done, err
}
