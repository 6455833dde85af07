package dsr

import (
	"fmt"
	"slices"
	"strings"
)

// Notices lists every notice kind sent to the subject.
var Notices = []string{NoticeReceipt, NoticeVerify, NoticeCompleted, NoticeDenied, NoticeMerged, NoticeExtended}

// Alerts go to the business's escalation channel, not to the subject:
// AlertOverdue when a request passes its due date, and AlertReminder(n)
// n days before it.
const AlertOverdue = "alert_overdue"

// AlertReminder is the alert kind of a reminder n days before the due date.
func AlertReminder(n int) string { return fmt.Sprintf("alert_reminder_%d", n) }

// IsNotice reports whether kind is a notice, an alert kind, the
// post-processing hook's NoticeHookOutcome or an agent's NoticeProtocolStatus.
func IsNotice(kind string) bool {
	return slices.Contains(Notices, kind) || kind == NoticeHookOutcome || kind == NoticeProtocolStatus || kind == AlertOverdue || strings.HasPrefix(kind, "alert_reminder_")
}

// IsAlert reports whether kind goes to the escalation channel.
func IsAlert(kind string) bool { return strings.HasPrefix(kind, "alert_") }

// NoticeProtocolStatus is the notice, not to the subject but to the party
// that passed the request by a privacy protocol (a DRP agent's
// status_callback, an OpenDSR controller's status_callback_urls), of the
// request's status. Every status change of a request with StatusCallbacks
// makes it pending, in the same update, and it is sent from the notice
// outbox, so it is retried until the party takes it; a retry sends the
// status the request has then (both protocols ask for the most recent one).
const NoticeProtocolStatus = "protocol_status"

// The notices a subject can be sent.
const (
	NoticeReceipt   = "receipt"   // the request was received (CCPA: within 10 business days; sent at once)
	NoticeVerify    = "verify"    // a code and a link to prove identity
	NoticeCompleted = "completed" // done; for access, with a download link
	NoticeDenied    = "denied"    // refused, with the reason
	NoticeMerged    = "merged"    // a second, identical submission was merged into this request
	NoticeExtended  = "extended"  // the deadline was extended, with the reason
)
