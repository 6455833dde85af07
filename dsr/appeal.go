package dsr

// AppealFiling is what an appeal is filed with.
type AppealFiling struct {
	Actor  string
	Reason string
	// Attested, set, is a new proof: how the filing agent verified the
	// person. Verify, set, asks for one: the person is sent the portal's
	// verification (an emailed code) and the appeal starts verifying.
	// Neither: the appeal inherits the proof of the request it appeals.
	Attested string
	Verify   bool
	// Index hashes the identities an attestation proves.
	Index *BlindIndex
}

// Proven reports whether the request's identity was ever established: it
// reached verified (proven by the person, attested by an agent, or an
// opt-out, which needs no proof), and was not denied as unverifiable.
func (r *Request) Proven() bool {
	if r.DenialBasis == DeniedUnverifiable {
		return false
	}
	for _, h := range r.History {
		if h.To == StatusVerified {
			return true
		}
	}
	return false
}

// Undecided reports whether the request ended without anyone deciding it:
// expired or cancelled while it still waited for the person's verification.
// An appeal that ends so leaves the denied request free to be appealed.
func (r *Request) Undecided() bool {
	if r.Status != StatusExpired && r.Status != StatusCancelled {
		return false
	}
	for _, h := range r.History {
		if h.To != StatusVerifying && h.To != StatusExpired && h.To != StatusCancelled {
			return false
		}
	}
	return true
}
