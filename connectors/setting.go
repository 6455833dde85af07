package connectors

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// SettingError is a problem with one setting of a connector's entry. A
// type's constructor returns it (SettingErrorf) so that its factory can
// point at the setting's line in the connectors file (AtSetting).
type SettingError struct {
	// Key is the setting, dotted for a nested one ("opt_out.lists").
	Key string
	// Msg is the whole message, starting with the key.
	Msg string
}

func (e *SettingError) Error() string { return e.Msg }

// SettingErrorf returns a *SettingError for key: "key: " and the message.
func SettingErrorf(key, format string, args ...any) error {
	return &SettingError{Key: key, Msg: key + ": " + fmt.Sprintf(format, args...)}
}

// AtSetting returns err at the line of its setting in the entry node (the
// line of the top-level key of a dotted one) when err is a *SettingError,
// else at the entry's line.
func AtSetting(node *yaml.Node, err error) error {
	var se *SettingError
	if !errors.As(err, &se) {
		return Errorf(node, "%v", err)
	}
	top, _, _ := strings.Cut(se.Key, ".")
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == top {
			return Errorf(node.Content[i], "%s", se.Msg)
		}
	}
	return Errorf(node, "%s", se.Msg)
}
