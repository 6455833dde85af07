package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dsar-project/dsar/config"
	"github.com/dsar-project/dsar/connectors/mask"
	"github.com/dsar-project/dsar/dsr"
)

// blindIndexKeyFile is the key file 'dsar dev' keeps its blind index key in,
// under DSAR_DATA_DIR, when DSAR_BLIND_INDEX_KEY is not set.
const blindIndexKeyFile = "blind-index.key"

// indexKeys are the blind index, with its previous keys and its pinned or
// derived suppression key, and the keys derived from it for other purposes.
type indexKeys struct {
	index *dsr.BlindIndex
	// current is the current blind index key: rate-limit and form keys
	// derive from it.
	current []byte
	// mask is the connectors' mask key: DSAR_MASK_KEY, else derived from
	// the oldest blind index key.
	mask []byte
}

// loadIndexKeys returns the blind index keys of cfg: DSAR_BLIND_INDEX_KEY
// (with DSAR_BLIND_INDEX_PREVIOUS_KEYS, DSAR_SUPPRESSION_KEY and
// DSAR_MASK_KEY), or else the key file 'dsar dev' keeps in dir, which is
// made when create is set and missing. Without create, a missing key is an
// error: a new key would match nobody.
func loadIndexKeys(cfg config.Config, dir string, create bool) (indexKeys, error) {
	key := cfg.BlindIndexKey
	if key == nil {
		if dir == "" {
			return indexKeys{}, errors.New("no blind index key: set DSAR_BLIND_INDEX_KEY, or pass --data-dir with dev's DSAR_DATA_DIR")
		}
		var err error
		if key, err = readIndexKeyFile(dir, create); err != nil {
			return indexKeys{}, err
		}
	}
	for i, prev := range cfg.BlindIndexPreviousKeys {
		// config checks DSAR_BLIND_INDEX_KEY; dev's key file it never sees.
		if bytes.Equal(prev, key) {
			return indexKeys{}, fmt.Errorf("DSAR_BLIND_INDEX_PREVIOUS_KEYS: key %d is the current blind index key itself (DSAR_BLIND_INDEX_KEY, or dev's key file): "+
				"set the new key in DSAR_BLIND_INDEX_KEY", i+1)
		}
	}
	index, err := dsr.NewBlindIndex(key, cfg.BlindIndexPreviousKeys...)
	if err != nil {
		return indexKeys{}, err
	}
	if cfg.SuppressionKey != nil {
		index.PinSuppressionKey(dsr.SuppressionKey(cfg.SuppressionKey))
	}
	k := indexKeys{index: index, current: key, mask: cfg.MaskKey}
	if k.mask == nil {
		k.mask = mask.KeyFrom(index.Oldest())
	}
	return k, nil
}

// readIndexKeyFile reads dev's blind index key file in dir, making it with
// a new key first when create is set and it is missing.
func readIndexKeyFile(dir string, create bool) ([]byte, error) {
	path := filepath.Join(dir, blindIndexKeyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("blind index key file %s: not hex: %w", path, err)
		}
		return key, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("blind index key file: %w", err)
	case !create:
		return nil, fmt.Errorf("no DSAR_BLIND_INDEX_KEY and no key file %s (is --data-dir the DSAR_DATA_DIR of dsar dev?)", path)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	key := randomHex(32)
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("blind index key file: %w", err)
	}
	return hex.DecodeString(key)
}
