package workers

import (
	"embed"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// The texts of the emails the workers send, one template file per notice
// kind (and one per alert), each defining "subject" and "body"; common.txt
// and alert.txt hold what several share. They are plain text/template
// files, so a translation is a folder of the same files. What comes from
// someone else (an agent's name, a reason an agent wrote) goes through the
// quoted and quoteBlock functions, never into the text as it is.
//
//go:embed templates/*.txt
var templateFiles embed.FS

// templateFuncs are the functions templates may call: dates written the
// one way each email writes them, and the quoting of others' words.
var templateFuncs = template.FuncMap{
	"day":        func(t time.Time) string { return t.UTC().Format("2 January 2006") },
	"date":       func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
	"stamp":      func(t time.Time) string { return t.UTC().Format(time.RFC1123) },
	"quoted":     quoted,
	"quoteBlock": quoteBlock,
}

// templateKinds are the template files, by the kind of message each writes.
var templateKinds = []string{
	dsr.NoticeReceipt, dsr.NoticeVerify, dsr.NoticeCompleted, dsr.NoticeDenied, dsr.NoticeExtended, dsr.NoticeMerged,
	"alert_overdue", "alert_reminder",
}

// templates holds one parsed set per kind. A template that does not parse
// stops the program at start, never at a send.
var templates = func() map[string]*template.Template {
	out := make(map[string]*template.Template, len(templateKinds))
	for _, kind := range templateKinds {
		out[kind] = template.Must(template.New(kind).Funcs(templateFuncs).Option("missingkey=error").
			ParseFS(templateFiles, "templates/common.txt", "templates/alert.txt", "templates/"+kind+".txt"))
	}
	return out
}()

// templateKind is the template file of a notice or alert kind: the
// reminders share one whatever their number of days.
func templateKind(kind string) string {
	if strings.HasPrefix(kind, "alert_reminder_") {
		return "alert_reminder"
	}
	return kind
}

// message is what a template fills in: the request's facts that emails
// name (never its identities), and what each notice adds.
type message struct {
	ID         string
	Type       dsr.Type
	Regulation dsr.Regulation
	Status     dsr.Status
	ReceivedAt time.Time
	DueAt      time.Time
	AssignedTo string
	AppealOf   string

	// Verifying: the receipt says a code follows.
	Verifying bool
	// The verification: its code, the portal link (empty: none), the
	// status token for a request filed by someone else (empty: none), how
	// long the code works; Agent and AgentName when an agent filed it;
	// DRPAgent, the id in the protocol's directory of the authorised agent
	// that filed it through the Data Rights Protocol.
	Code        string
	VerifyLink  string
	StatusToken string
	CodeTTL     time.Duration
	Agent       bool
	AgentName   string
	DRPAgent    string
	// ExportLink, when set, is the signed download link that works until
	// ExportUntil.
	ExportLink  string
	ExportUntil time.Time
	// Reason is an agent's words: why a request was refused or extended.
	Reason string
	// StatusLink is where the portal shows the request.
	StatusLink string
	// DaysBeforeDue and AgentLink are an alert's.
	DaysBeforeDue int
	AgentLink     string
}

// newMessage returns the template data of r, with its facts filled in.
func newMessage(r *dsr.Request) message {
	return message{ID: r.ID, Type: r.Type, Regulation: r.Regulation, Status: r.Status, ReceivedAt: r.ReceivedAt, DueAt: r.DueAt,
		AssignedTo: r.AssignedTo, AppealOf: r.AppealOf}
}

// render writes the subject and body of a kind of message.
func render(kind string, m message) (subject, body string, err error) {
	t, ok := templates[templateKind(kind)]
	if !ok {
		return "", "", fmt.Errorf("unknown notice %q", kind)
	}
	var s, b strings.Builder
	if err := t.ExecuteTemplate(&s, "subject", m); err != nil {
		return "", "", fmt.Errorf("notice %s: %w", kind, err)
	}
	if err := t.ExecuteTemplate(&b, "body", m); err != nil {
		return "", "", fmt.Errorf("notice %s: %w", kind, err)
	}
	return s.String(), b.String(), nil
}
