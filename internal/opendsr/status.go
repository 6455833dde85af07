package opendsr

import "github.com/dsar-project/dsar/dsr"

// StatusOf maps a request's status onto OpenDSR's: pending until it is
// acted on, in_progress while it is (an agent looking at a failure
// included), completed, and cancelled for a request cancelled, denied or
// never verified (OpenDSR has no denial).
func StatusOf(st dsr.Status) string {
	switch st {
	case dsr.StatusInProgress, dsr.StatusNeedsAttention:
		return StatusInProgress
	case dsr.StatusCompleted:
		return StatusCompleted
	case dsr.StatusCancelled, dsr.StatusDenied, dsr.StatusExpired:
		return StatusCancelled
	}
	return StatusPending
}
