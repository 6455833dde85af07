package manual

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dsar-project/dsar/connectors"
)

// state is an open task as its job's handle keeps it: the task id (random,
// it names no one), when the task was made, when the owner was last
// reminded (or first told), and whether it was escalated. The handle is
// "<task>.<since>.<reminded>.<escalated>", Unix seconds and 0 or 1; the
// worker stores the handle each poll returns, so the task keeps its own
// schedule without a store of its own.
type state struct {
	Task      string
	Since     time.Time
	Reminded  time.Time
	Escalated bool
}

var taskPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

// newTaskID returns a random task id of 128 bits, URL-safe.
func newTaskID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new task id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (s state) handle() string {
	esc := "0"
	if s.Escalated {
		esc = "1"
	}
	return s.Task + "." + strconv.FormatInt(s.Since.Unix(), 10) + "." + strconv.FormatInt(s.Reminded.Unix(), 10) + "." + esc
}

// TaskOf returns the task id a manual job's handle names, for the task page
// to check a link against the job it names.
func TaskOf(handle string) (string, error) {
	s, err := parseState(handle)
	return s.Task, err
}

func parseState(handle string) (state, error) {
	parts := strings.Split(handle, ".")
	if len(parts) != 4 || !taskPattern.MatchString(parts[0]) || (parts[3] != "0" && parts[3] != "1") {
		return state{}, errors.New("not a manual task's handle")
	}
	since, err1 := strconv.ParseInt(parts[1], 10, 64)
	reminded, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return state{}, errors.New("not a manual task's handle")
	}
	return state{Task: parts[0], Since: time.Unix(since, 0).UTC(), Reminded: time.Unix(reminded, 0).UTC(), Escalated: parts[3] == "1"}, nil
}

// Link is what a task link carries, signed (see connectors.Tasks.Link): the
// job and task it answers, and what the page shows and checks. It names no
// data subject: the page reads the job for the identities it shows.
type Link struct {
	Job       string            `json:"j"`
	Task      string            `json:"t"`
	Connector string            `json:"c"`
	Action    connectors.Action `json:"a"`
	System    string            `json:"s"`
	// MaxUpload and MaxRecords bound an uploaded export.
	MaxUpload  int64 `json:"u,omitempty"`
	MaxRecords int   `json:"r,omitempty"`
}

// Payload encodes l for connectors.Tasks.Link.
func (l Link) Payload() string {
	b, _ := json.Marshal(l) // strings and numbers only: cannot fail
	return string(b)
}

// ParseLink decodes the payload of a task link.
func ParseLink(payload string) (Link, error) {
	var l Link
	if err := json.Unmarshal([]byte(payload), &l); err != nil {
		return Link{}, errors.New("not a manual task's link")
	}
	if l.Job == "" || !taskPattern.MatchString(l.Task) || !Handles(l.Action) {
		return Link{}, errors.New("not a manual task's link")
	}
	return l, nil
}

// Handles reports whether a is an action a manual task can be about.
func Handles(a connectors.Action) bool {
	return a == connectors.ActionExport || a == connectors.ActionErase || a == connectors.ActionOptOut
}

// The kinds of an owner's answer.
const (
	// AnswerConfirm: the owner did the erasure or opt-out (erase, opt_out).
	AnswerConfirm = "confirm"
	// AnswerAbsent: the person is not in the system (any action).
	AnswerAbsent = "absent"
	// AnswerUpload: the owner uploaded the person's records (export).
	AnswerUpload = "upload"
)

// Answer is an owner's answer to a task, as the task page stores it on the
// job (JSON) and the connector's Answer reads it.
type Answer struct {
	// Task is the task answered; an answer to another task of the job is
	// refused.
	Task string `json:"task"`
	Kind string `json:"kind"`
	// Count is how many records a confirmation says were erased or opted
	// out, when the owner gave it.
	Count *int64 `json:"count,omitempty"`
	// Records are an upload's records, JSON objects, checked by
	// ParseUpload.
	Records []json.RawMessage `json:"records,omitempty"`
}

// Kinds returns the answers an owner may give to a task of action a.
func Kinds(a connectors.Action) []string {
	if a == connectors.ActionExport {
		return []string{AnswerUpload, AnswerAbsent}
	}
	return []string{AnswerConfirm, AnswerAbsent}
}

// Check returns an error when ans is not an answer to a task of action a.
func (ans Answer) Check(a connectors.Action) error {
	ok := false
	for _, k := range Kinds(a) {
		ok = ok || ans.Kind == k
	}
	if !ok {
		return fmt.Errorf("a task to %s is answered with %s, not %q", a, strings.Join(Kinds(a), " or "), ans.Kind)
	}
	if ans.Count != nil && *ans.Count < 0 {
		return errors.New("a count cannot be negative")
	}
	if ans.Kind != AnswerConfirm && ans.Count != nil {
		return errors.New("only a confirmation carries a count")
	}
	if ans.Kind != AnswerUpload && len(ans.Records) > 0 {
		return errors.New("only an upload carries records")
	}
	return nil
}
