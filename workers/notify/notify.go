// Package notify delivers messages to people (data subjects): verification
// codes, receipts, completion notices. A message is one plain-text email to
// one address. SMTP sends it through a mail server; Outbox writes it to a
// directory for development.
//
// Nothing here logs or returns an address, a subject or a body: logs and
// errors name a message by its request id and kind, and errors from the mail
// server carry its reply codes only, since its reply text may quote the
// recipient.
package notify

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Message is one plain-text email to one person.
type Message struct {
	To      string // one address
	Subject string
	Text    string // UTF-8 plain text body
	// RequestID and Kind label the message in headers and logs; they never
	// carry personal data.
	RequestID string
	Kind      string // e.g. "verify", "receipt", "completed", "denied"
}

// ErrRejected marks a message the mail system refused for good (a 5xx
// reply to MAIL/RCPT/DATA, an address it will never accept); retrying
// cannot help. errors.Is(err, ErrRejected) holds for such errors.
var ErrRejected = errors.New("message refused for good")

// label is what RequestID and Kind may hold: they go into headers and file
// names as they are.
var label = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// maxLine is the longest header line RFC 5322 allows, without its CRLF.
const maxLine = 998

// Render returns the message as RFC 5322 bytes: From, To, Subject (RFC 2047
// encoded-word when not ASCII), Date (RFC 5322 format, from the now argument),
// Message-ID (<random@domain-of-from>), MIME-Version: 1.0,
// Content-Type: text/plain; charset=utf-8, Content-Transfer-Encoding: quoted-printable,
// X-DSAR-Request-Id, X-DSAR-Kind; CRLF line endings; header injection impossible
// (reject or strip CR/LF in To/Subject/From; validate addresses with net/mail).
//
// Render rejects a From or To that is not one address, a Subject with
// control characters (CR and LF among them), a Text that is not UTF-8, and a
// RequestID or Kind other than letters, digits, '.', '_' and '-' (both may be
// empty: their header is then left out). Line breaks in Text may be LF or
// CRLF. Its errors never quote To, Subject or Text.
func Render(from string, m Message, now time.Time) ([]byte, error) {
	fromAddr, err := parseFrom(from)
	if err != nil {
		return nil, err
	}
	toAddr, err := parseTo(m.To)
	if err != nil {
		return nil, err
	}
	if hasControl(m.Subject) {
		return nil, errors.New("render: subject has control characters")
	}
	if !utf8.ValidString(m.Subject) || !utf8.ValidString(m.Text) {
		return nil, errors.New("render: subject or text is not UTF-8")
	}
	for name, v := range map[string]string{"request id": m.RequestID, "kind": m.Kind} {
		if v != "" && !label.MatchString(v) {
			return nil, fmt.Errorf("render: %s must be 1-100 letters, digits, '.', '_' or '-'", name)
		}
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("render: message id: %w", err)
	}
	domain := fromAddr.Address[strings.LastIndexByte(fromAddr.Address, '@')+1:]

	var b bytes.Buffer
	headers := [][2]string{
		{"From", fromAddr.String()},
		{"To", toAddr.String()},
		{"Subject", mime.QEncoding.Encode("utf-8", m.Subject)},
		{"Date", now.Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(id) + "@" + domain + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "quoted-printable"},
	}
	if m.RequestID != "" {
		headers = append(headers, [2]string{"X-DSAR-Request-Id", m.RequestID})
	}
	if m.Kind != "" {
		headers = append(headers, [2]string{"X-DSAR-Kind", m.Kind})
	}
	for _, h := range headers {
		if err := writeHeader(&b, h[0], h[1]); err != nil {
			return nil, err
		}
	}
	b.WriteString("\r\n")

	text := strings.ReplaceAll(m.Text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	qp := quotedprintable.NewWriter(&b) // turns LF into CRLF, keeps lines within 76 characters
	if _, err := qp.Write([]byte(text)); err != nil {
		return nil, fmt.Errorf("render: body: %w", err)
	}
	if err := qp.Close(); err != nil {
		return nil, fmt.Errorf("render: body: %w", err)
	}
	return b.Bytes(), nil
}

// parseFrom parses the sender: one address, display name allowed.
func parseFrom(from string) (*mail.Address, error) {
	if strings.ContainsAny(from, "\r\n") {
		return nil, errors.New("render: from has a line break")
	}
	a, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("render: from: %w", err)
	}
	return a, nil
}

// parseTo parses the recipient. Its error does not quote the address
// (net/mail's sometimes does).
func parseTo(to string) (*mail.Address, error) {
	if strings.ContainsAny(to, "\r\n") {
		return nil, errors.New("render: to has a line break")
	}
	a, err := mail.ParseAddress(to)
	if err != nil {
		return nil, errors.New("render: to is not one valid email address")
	}
	return a, nil
}

// hasControl reports whether s holds a control character (tab included).
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}

// foldAt is the longest header line Render writes where it can: RFC 2047
// allows 76 characters on a line holding encoded-words.
const foldAt = 76

// writeHeader writes one header field, folded at spaces to lines of at most
// foldAt characters where it can be. Folding inserts CRLF before a space, so
// the unfolded value is the value given; encoded-words hold no spaces and
// are at most 75 characters, so an encoded subject always folds in time.
func writeHeader(b *bytes.Buffer, name, value string) error {
	var s strings.Builder
	s.WriteString(name + ":")
	line, first, text := len(name)+1, true, false
	for _, w := range strings.Split(value, " ") {
		// Each word follows a space: the one after the colon, then the
		// value's own. A line never holds only the space of a fold.
		if w != "" && (text || first) && line+1+len(w) > foldAt {
			s.WriteString("\r\n")
			line, text = 0, false
		}
		s.WriteByte(' ')
		line++
		s.WriteString(w)
		line += len(w)
		text = text || w != ""
		first = false
	}
	for _, l := range strings.Split(s.String(), "\r\n") {
		if len(l) > maxLine {
			return fmt.Errorf("render: %s header too long", strings.ToLower(name))
		}
	}
	b.WriteString(s.String())
	b.WriteString("\r\n")
	return nil
}
