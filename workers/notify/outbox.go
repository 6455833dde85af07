package notify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Outbox writes each message as an RFC 5322 .eml file into a directory, for
// development: nothing leaves the machine. It is safe for concurrent use.
type Outbox struct {
	dir  string
	from string
	log  *slog.Logger
	now  func() time.Time
}

// NewOutbox returns an outbox writing into dir, which it creates (0700) if
// needed, with from as the sender (one address, net/mail). A nil log
// discards.
func NewOutbox(dir, from string, log *slog.Logger) (*Outbox, error) {
	if dir == "" {
		return nil, errors.New("outbox: no directory")
	}
	if _, err := parseFrom(from); err != nil {
		return nil, fmt.Errorf("outbox: from %q: not one email address", from)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Outbox{dir: dir, from: from, log: log, now: time.Now}, nil
}

// Send writes m to a new file (0600) named <UTC time>-<request id>-<kind>.eml,
// "none" standing in for an empty request id or kind; a name already taken
// gets a counter before .eml. It logs the request id, the kind and the file
// name, never the address, subject or body. A message Render refuses gives
// an error wrapping ErrRejected.
func (o *Outbox) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	now := o.now()
	data, err := Render(o.from, m, now)
	if err != nil {
		return fmt.Errorf("outbox: %w: %w", err, ErrRejected)
	}
	base := fmt.Sprintf("%s-%s-%s", now.UTC().Format("20060102T150405.000000000Z"), orNone(m.RequestID), orNone(m.Kind))
	for n := 1; ; n++ {
		name := base + ".eml"
		if n > 1 {
			name = fmt.Sprintf("%s-%d.eml", base, n)
		}
		err := writeNew(filepath.Join(o.dir, name), data)
		if errors.Is(err, fs.ErrExist) && n < 1000 {
			continue
		}
		if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		o.log.InfoContext(ctx, "message written to outbox", "request_id", m.RequestID, "kind", m.Kind, "file", name)
		return nil
	}
}

// writeNew writes data to a file that must not exist yet, removing it
// again if the write fails.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
	}
	return err
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
