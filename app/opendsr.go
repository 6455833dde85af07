package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/opendsr"
)

// OpenDSROptions configure this service as an OpenDSR processor
// (handlers/opendsrapi): without a Signer and Controllers it is off.
type OpenDSROptions struct {
	// Domain is the processor domain its certificate is issued for.
	Domain string
	// Signer signs every answer with the certificate's key.
	Signer *opendsr.Signer
	// CertificateURL is where the certificate is served, for discovery.
	CertificateURL string
	// Base is the public URL of the processor's routes (DSAR_PUBLIC_URL
	// and the prefix): results_url is under it.
	Base string
	// Controllers are the controllers allowed: the SHA-256 of each one's
	// bearer secret, by its id.
	Controllers map[string][32]byte
	// AllowInternalCallbacks lets status_callback_urls name private or
	// loopback addresses (tests, one machine).
	AllowInternalCallbacks bool
}

// The ways an OpenDSR call fails beside a malformed request
// (opendsr.ErrMalformed).
var (
	// ErrOpenDSROff: the processor side is not configured.
	ErrOpenDSROff = errors.New("OpenDSR is not configured here")
	// ErrOpenDSRNoIdentity: none of a request's identities is one this
	// processor holds (see OpenDSRDiscovery); hashed ones are never
	// guessed.
	ErrOpenDSRNoIdentity = errors.New("none of the subject_identities is of a type and format this processor holds: see /discovery")
	// ErrOpenDSRNotPending: a cancellation of a request already acted on.
	ErrOpenDSRNotPending = errors.New("only a pending request can be cancelled")
	// ErrOpenDSRNoResults: results asked of a request that is not a
	// completed access request.
	ErrOpenDSRNoResults = errors.New("only a completed access or portability request has results")
	// ErrOpenDSRResultsTooLarge: results over MaxOpenDSRResults.
	ErrOpenDSRResultsTooLarge = fmt.Errorf("the results are over %d bytes: ask the processor for them another way", MaxOpenDSRResults)
)

// openDSRIdentities are the identity type and format pairs this processor
// acts on, and the kind each is: every identity type given raw. A hashed
// one is never acted on: a hash cannot be looked up in the blind index,
// which is keyed, and guessing what it hashes is no business of ours.
var openDSRIdentities = []struct {
	typ, format string
	kind        dsr.Kind
}{
	{"email", opendsr.FormatRaw, dsr.KindEmail},
	{"controller_customer_id", opendsr.FormatRaw, dsr.KindCustomerID},
	{"android_advertising_id", opendsr.FormatRaw, dsr.KindAdvertisingID},
	{"fire_advertising_id", opendsr.FormatRaw, dsr.KindAdvertisingID},
	{"ios_advertising_id", opendsr.FormatRaw, dsr.KindAdvertisingID},
	{"microsoft_advertising_id", opendsr.FormatRaw, dsr.KindAdvertisingID},
	{"roku_advertising_id", opendsr.FormatRaw, dsr.KindAdvertisingID},
	{"android_id", opendsr.FormatRaw, dsr.KindDeviceID},
	{"ios_vendor_id", opendsr.FormatRaw, dsr.KindDeviceID},
	{"microsoft_publisher_id", opendsr.FormatRaw, dsr.KindDeviceID},
	{"roku_publisher_id", opendsr.FormatRaw, dsr.KindDeviceID},
}

// OpenDSROn reports whether the processor side is configured.
func (s *Service) OpenDSROn() bool { return s.openDSR.Signer != nil && len(s.openDSR.Controllers) > 0 }

// OpenDSRController returns the id of the controller whose bearer secret
// is secret, comparing with every one in constant time; "" for none.
func (s *Service) OpenDSRController(secret string) string {
	if secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	found := ""
	for id, want := range s.openDSR.Controllers {
		if subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
			found = id
		}
	}
	return found
}

// OpenDSRSigner returns the signer of the processor's answers.
func (s *Service) OpenDSRSigner() *opendsr.Signer { return s.openDSR.Signer }

// OpenDSRDiscovery is the discovery document: the identities and types
// this processor acts on, and where its certificate is.
func (s *Service) OpenDSRDiscovery() opendsr.Discovery {
	d := opendsr.Discovery{APIVersion: opendsr.Version, SupportedSubjectRequestTypes: opendsr.Types, ProcessorCertificate: s.openDSR.CertificateURL}
	for _, id := range openDSRIdentities {
		d.SupportedIdentities = append(d.SupportedIdentities, opendsr.Identity{Type: id.typ, Format: id.format})
	}
	return d
}

// openDSRSpace is the namespace of the request ids OpenDSR requests are
// stored under: a name-based UUID of the controller and its
// subject_request_id, so one controller's id never reaches another's
// request, and a status needs no lookup table.
var openDSRSpace = uuid.MustParse("6f0f3c57-3e4b-4f51-9a0e-4b1d6a9d2c11")

func openDSRRequestID(controller, subjectRequestID string) string {
	return uuid.NewSHA1(openDSRSpace, []byte(controller+"\x00"+subjectRequestID)).String()
}

// OpenDSRCreate files the request in body from controller, and returns the
// answer: the request is the controller's to verify, so it is verified; its
// identities are those given raw (openDSRIdentities: emails, controller
// customer ids, advertising and device ids; hashed ones are not acted on,
// and never guessed); access and
// portability are an access request, erasure a deletion, under the
// regulation named. The same subject_request_id again with the same
// request answers the request it filed; with another, it is
// dsr.ErrIdempotencyMismatch.
func (s *Service) OpenDSRCreate(ctx context.Context, controller string, body []byte) (opendsr.CreateResponse, error) {
	r, err := opendsr.ParseRequest(body)
	if err != nil {
		return opendsr.CreateResponse{}, err
	}
	for i, u := range r.StatusCallbackURLs {
		if err := checkCallback(u, s.openDSR.AllowInternalCallbacks); err != nil {
			return opendsr.CreateResponse{}, fmt.Errorf("%w: status_callback_urls[%d] %w", opendsr.ErrMalformed, i, err)
		}
	}
	var ids []dsr.Identity
	for _, given := range r.SubjectIdentities {
		for _, known := range openDSRIdentities {
			if given.Type != known.typ || given.Format != known.format {
				continue
			}
			v, err := dsr.NormalizeGiven(known.kind, given.Value)
			if err != nil {
				return opendsr.CreateResponse{}, fmt.Errorf("%w: an identity of type %s is not valid for its type", opendsr.ErrMalformed, given.Type)
			}
			ids = append(ids, dsr.Identity{Kind: known.kind, Value: v, Source: dsr.SourceSubject})
		}
	}
	if len(ids) == 0 {
		return opendsr.CreateResponse{}, ErrOpenDSRNoIdentity
	}
	in := dsr.Intake{
		ID: openDSRRequestID(controller, r.SubjectRequestID), Type: dsr.TypeAccess, Regulation: dsr.Regulation(r.Regulation),
		Source: dsr.SourceOpenDSR, FiledBy: "opendsr:" + controller, Status: dsr.StatusVerified,
		Identities: dsr.MergeIdentities(ids, nil), ReceivedAt: s.now(), Calendar: s.calendar, Channel: "api",
		VerificationMethod: "OpenDSR: verified by the controller " + controller,
		OpenDSR:            &dsr.OpenDSRLink{Controller: controller, SubjectRequestID: r.SubjectRequestID, Type: r.SubjectRequestType, Callbacks: r.StatusCallbackURLs},
	}
	if r.SubjectRequestType == opendsr.TypeErasure {
		in.Type = dsr.TypeDeletion
	}
	// A request filed before the blind index key changed stored its
	// fingerprint under the previous key: the same request again matches
	// that one.
	for _, fp := range in.Fingerprints(s.index) {
		if _, err = s.store.ClaimIdempotencyKey(ctx, dsr.IdempotencyID("opendsr:"+controller, r.SubjectRequestID), in.ID, fp); !errors.Is(err, dsr.ErrIdempotencyMismatch) {
			break
		}
	}
	if err != nil {
		return opendsr.CreateResponse{}, err
	}
	req, err := s.file(ctx, in, filing{})
	if errors.Is(err, dsr.ErrConflict) {
		req, err = s.store.Request(ctx, in.ID) // filed before
	}
	if err != nil {
		return opendsr.CreateResponse{}, err
	}
	s.log.InfoContext(ctx, "opendsr request filed", "request_id", req.ID, "controller", controller, "type", r.SubjectRequestType)
	return opendsr.CreateResponse{ControllerID: controller, ExpectedCompletionTime: stampUTC(req.DueAt), ReceivedTime: stampUTC(req.ReceivedAt),
		EncodedRequest: base64.StdEncoding.EncodeToString(body), SubjectRequestID: r.SubjectRequestID}, nil
}

// openDSRRequest reads the request controller filed as subjectRequestID;
// dsr.ErrNotFound when it filed none.
func (s *Service) openDSRRequest(ctx context.Context, controller, subjectRequestID string) (*dsr.Request, error) {
	if !opendsr.ValidID(subjectRequestID) {
		return nil, dsr.ErrNotFound
	}
	req, err := s.store.Request(ctx, openDSRRequestID(controller, subjectRequestID))
	if err != nil {
		return nil, err
	}
	if req.OpenDSR == nil || req.OpenDSR.Controller != controller {
		return nil, dsr.ErrNotFound
	}
	return req, nil
}

// OpenDSRStatus returns the status of the request controller filed as
// subjectRequestID (dsr.ErrNotFound when none).
func (s *Service) OpenDSRStatus(ctx context.Context, controller, subjectRequestID string) (opendsr.StatusResponse, error) {
	req, err := s.openDSRRequest(ctx, controller, subjectRequestID)
	if err != nil {
		return opendsr.StatusResponse{}, err
	}
	out := opendsr.StatusResponse{ControllerID: controller, ExpectedCompletionTime: stampUTC(req.DueAt), SubjectRequestID: subjectRequestID,
		RequestStatus: opendsr.StatusOf(req.Status), APIVersion: opendsr.Version}
	if req.Status == dsr.StatusCompleted {
		jobs, err := s.store.Jobs(ctx, req.ID)
		if err != nil {
			return opendsr.StatusResponse{}, err
		}
		out.ResultsURL, out.ResultsCount = opendsr.Results(req, jobs, s.openDSR.Base)
	}
	return out, nil
}

// MaxOpenDSRResults bounds the results document of one request: it is
// signed, so it is built whole before it is sent.
const MaxOpenDSRResults = 16 << 20

// OpenDSRResult is one record of a results document.
type OpenDSRResult struct {
	// System is the connector that found it, Collection where.
	System     string          `json:"system"`
	Collection string          `json:"collection"`
	Record     json.RawMessage `json:"record"`
}

// OpenDSRResults returns the results document of the completed access
// request controller filed as subjectRequestID, what its results_url
// serves: {"subject_request_id", "results_count", "results": [{"system",
// "collection", "record"}]}, each record as the export holds it (relaxed
// Extended JSON). ErrOpenDSRNoResults for any other request,
// ErrOpenDSRResultsTooLarge over MaxOpenDSRResults. Each read is audited
// as a download of the export.
func (s *Service) OpenDSRResults(ctx context.Context, controller, subjectRequestID string) ([]byte, error) {
	req, err := s.openDSRRequest(ctx, controller, subjectRequestID)
	if err != nil {
		return nil, err
	}
	if req.Type != dsr.TypeAccess || req.Status != dsr.StatusCompleted {
		return nil, ErrOpenDSRNoResults
	}
	jobs, err := s.store.Jobs(ctx, req.ID)
	if err != nil {
		return nil, err
	}
	_, count := opendsr.Results(req, jobs, s.openDSR.Base)
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"subject_request_id":%q,"results_count":%d,"results":[`, subjectRequestID, *count)
	first := true
	for _, j := range jobs {
		if j.Action != dsr.ActionExport || j.Status != dsr.JobSucceeded {
			continue
		}
		err := s.store.EachExportRecord(ctx, j.ID, func(collection string, data json.RawMessage) error {
			rec, err := json.Marshal(OpenDSRResult{System: j.Connector, Collection: collection, Record: data})
			if err != nil {
				return err
			}
			if b.Len()+len(rec)+2 > MaxOpenDSRResults {
				return ErrOpenDSRResultsTooLarge
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.Write(rec)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("opendsr results of %s: %w", req.ID, err)
		}
	}
	b.WriteString("]}")
	s.audit(ctx, req.ID, "opendsr:"+controller, "downloaded", map[string]string{"via": "opendsr results_url"})
	s.log.InfoContext(ctx, "opendsr results read", "request_id", req.ID, "controller", controller, "bytes", b.Len())
	return b.Bytes(), nil
}

// OpenDSRCancel cancels the request controller filed as subjectRequestID
// while it is pending (ErrOpenDSRNotPending after).
func (s *Service) OpenDSRCancel(ctx context.Context, controller, subjectRequestID string) (opendsr.CancelResponse, error) {
	req, err := s.openDSRRequest(ctx, controller, subjectRequestID)
	if err != nil {
		return opendsr.CancelResponse{}, err
	}
	out := opendsr.CancelResponse{ControllerID: controller, SubjectRequestID: subjectRequestID, ReceivedTime: stampUTC(s.now()), APIVersion: opendsr.Version}
	switch opendsr.StatusOf(req.Status) {
	case opendsr.StatusCancelled:
		return out, nil
	case opendsr.StatusPending:
	default:
		return opendsr.CancelResponse{}, ErrOpenDSRNotPending
	}
	if _, err := s.Cancel(ctx, req.ID, "cancelled by the controller through OpenDSR", "opendsr:"+controller); err != nil {
		if errors.Is(err, dsr.ErrConflict) {
			return opendsr.CancelResponse{}, ErrOpenDSRNotPending
		}
		return opendsr.CancelResponse{}, err
	}
	s.log.InfoContext(ctx, "opendsr request cancelled", "request_id", req.ID, "controller", controller)
	return out, nil
}

func stampUTC(t time.Time) string { return t.UTC().Format(time.RFC3339) }
