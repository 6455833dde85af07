package app

import (
	"errors"
)

// ErrFourEyes: the agent filed the request (or the request it appeals),
// and requests of its type are approved by a second agent.
var ErrFourEyes = errors.New("four eyes: another agent must approve")

// ErrExportNotAvailable: the request has no export (not an access request),
// or not yet (not completed).
var ErrExportNotAvailable = errors.New("export not available")
