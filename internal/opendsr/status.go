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

// ResultsPath is the path, under a processor's prefix, of the results of
// the completed access request subjectRequestID: dsar's results_url.
func ResultsPath(subjectRequestID string) string { return "/requests/" + subjectRequestID + "/results" }

// Results is what the status of req, whose jobs are jobs, says of its
// results once it is completed (zero values before): results_count, the
// records its jobs exported (an access) or erased (an erasure); and, for
// an access, results_url, base (the processor's public URL and prefix) and
// [ResultsPath].
func Results(req *dsr.Request, jobs []dsr.Job, base string) (url string, count *int64) {
	if req.Status != dsr.StatusCompleted || req.OpenDSR == nil {
		return "", nil
	}
	want := dsr.ActionErase
	if req.Type == dsr.TypeAccess {
		want = dsr.ActionExport
		url = base + ResultsPath(req.OpenDSR.SubjectRequestID)
	}
	var n int64
	for _, j := range jobs {
		if j.Action == want && j.Status == dsr.JobSucceeded {
			n += j.Records
		}
	}
	return url, &n
}
