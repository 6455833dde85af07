package envelope

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFileName is the name of the key file LoadOrCreateKeyFile keeps in its
// directory.
const KeyFileName = "master.keys"

// maxKeyFileSize bounds what LoadOrCreateKeyFile reads.
const maxKeyFileSize = 64 << 10

const keyFileHeader = `# dsar master keys: one id:base64key a line (the DSAR_MASTER_KEYS format), the first active.
# Everything encrypted under these keys is unreadable without this file: back it up apart from
# the data, and keep it readable by its owner only (mode 0600).
`

// LoadOrCreateKeyFile returns the keyring in dir/master.keys, creating the
// file with one new key (GenerateMasterKey) when it does not exist; created
// says which. The file holds one id:base64key a line, the first active;
// blank lines and lines starting with # are ignored.
//
// The file is created with mode 0600 and atomically (written to a
// temporary file in dir, synced, then linked into place), so a crash
// leaves either no file or a whole one, and two processes starting
// together end with the same key. An existing file whose mode grants
// anything to group or others is refused, as is one that does not parse.
func LoadOrCreateKeyFile(dir string) (kr *Keyring, created bool, err error) {
	path := filepath.Join(dir, KeyFileName)
	kr, err = readKeyFile(path)
	if err == nil {
		return kr, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("envelope: creating the key directory: %w", err)
	}
	won, err := createKeyFile(dir, path)
	if err != nil {
		return nil, false, err
	}
	kr, err = readKeyFile(path)
	if err != nil {
		return nil, false, err
	}
	return kr, won, nil
}

// createKeyFile writes a new key file at path unless one appears first;
// it reports whether its file is the one in place.
func createKeyFile(dir, path string) (bool, error) {
	tmp, err := os.CreateTemp(dir, "."+KeyFileName+"-*.tmp")
	if err != nil {
		return false, fmt.Errorf("envelope: creating the key file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after a link, only the temporary name goes
	content := keyFileHeader + GenerateMasterKey() + "\n"
	_, err = io.WriteString(tmp, content)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("envelope: writing the key file: %w", err)
	}
	// Link fails if path exists, so a concurrent start's key is never
	// replaced; where links are not supported, rename.
	won := true
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			won = false
		} else if err := os.Rename(tmpName, path); err != nil {
			return false, fmt.Errorf("envelope: putting the key file in place: %w", err)
		}
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return won, nil
}

// readKeyFile reads and parses a key file, refusing loose permissions.
func readKeyFile(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("envelope: key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("envelope: key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("envelope: key file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("envelope: key file %s has mode %04o, looser than 0600: master keys must be readable by their owner only; run chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("envelope: reading key file %s: %w", path, err)
	}
	defer clear(b)
	if len(b) > maxKeyFileSize {
		return nil, fmt.Errorf("envelope: key file %s is larger than %d bytes", path, maxKeyFileSize)
	}
	var entries []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		entries = append(entries, strings.Split(line, ",")...)
	}
	if len(entries) == 0 {
		entries = []string{""}
	}
	kr, err := parseEntries(entries)
	if err != nil {
		return nil, fmt.Errorf("envelope: key file %s: %w", path, err)
	}
	return kr, nil
}
