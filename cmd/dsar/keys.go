package main

import (
	"fmt"
	"io"

	"github.com/dsar-project/dsar/internal/envelope"
)

const keysSummary = "make a new master key for DSAR_MASTER_KEYS (dsar keys new)"

const keysHelp = `Usage: dsar keys new

Prints a new master key entry, id:base64key (32 random bytes), for
DSAR_MASTER_KEYS, which wraps the data keys that seal personal data at rest.
To rotate, put the new entry first and keep the old ones after it until
every data key is re-wrapped; a key removed too early leaves what it wraps
unreadable. Keep the keys apart from the data and its backups.
`

// runKeys runs `dsar keys`.
func runKeys(args []string, stdout io.Writer) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		_, err := io.WriteString(stdout, keysHelp)
		return err
	}
	if len(args) != 1 || args[0] != "new" {
		return usageError("keys: want: dsar keys new")
	}
	_, err := fmt.Fprintln(stdout, envelope.GenerateMasterKey())
	return err
}
