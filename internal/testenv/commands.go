package testenv

import (
	"context"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Command is one store command as the driver sent it.
type Command struct {
	Name       string // find, insert, update, findAndModify, ...
	Database   string
	Collection string
	Body       bson.Raw
}

// Commands records the commands a client sends, through the driver's command
// monitor, so tests can count round trips exactly. Handshakes, heartbeats and
// cursor bookkeeping (hello, endSessions, killCursors) are left out.
type Commands struct {
	mu   sync.Mutex
	list []Command
}

// ClientOptions returns options that install the recorder on a client.
func (c *Commands) ClientOptions() *options.ClientOptions {
	return options.Client().SetMonitor(&event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			switch e.CommandName {
			case "hello", "isMaster", "ismaster", "endSessions", "killCursors", "saslStart", "saslContinue", "buildInfo":
				return
			}
			coll, _ := e.Command.Lookup(e.CommandName).StringValueOK()
			c.mu.Lock()
			c.list = append(c.list, Command{Name: e.CommandName, Database: e.DatabaseName, Collection: coll, Body: append(bson.Raw(nil), e.Command...)})
			c.mu.Unlock()
		},
	})
}

// Reset forgets the commands recorded so far.
func (c *Commands) Reset() {
	c.mu.Lock()
	c.list = nil
	c.mu.Unlock()
}

// All returns the commands recorded since the last Reset.
func (c *Commands) All() []Command {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Command(nil), c.list...)
}

// Names returns the names of the commands recorded since the last Reset.
func (c *Commands) Names() []string {
	var out []string
	for _, cmd := range c.All() {
		out = append(out, cmd.Name)
	}
	return out
}
