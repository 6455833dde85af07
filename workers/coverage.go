package workers

import (
	"fmt"
	"strings"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
)

// CheckConnectors returns an error naming every request type that no
// connector of reg can act on. A worker refuses to start with such a
// registry: its requests would otherwise end with nothing done (the fan-out
// sends them to needs_attention, never to completed). Corrections are left
// out: correcting is optional, and a correction no connector can apply is
// refused at intake where the fields are known, else sent to an agent.
func CheckConnectors(reg *connectors.Registry) error {
	var missing []string
	for _, t := range dsr.FiledTypes {
		if t == dsr.TypeCorrection {
			continue
		}
		a := t.Action()
		if len(reg.For(connectors.Action(a))) == 0 {
			missing = append(missing, fmt.Sprintf("%s (%s requests)", actionVerb(a), t))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("no connector can %s: every request of such a type would need attention with nothing done; "+
		"configure one (see docs/connectors.md: a collection's erase, opt_out...) for each", strings.Join(missing, " or "))
}

// actionVerb says what an action does, for messages.
func actionVerb(a dsr.Action) string {
	switch a {
	case dsr.ActionExport:
		return "export data"
	case dsr.ActionErase:
		return "erase data"
	case dsr.ActionOptOut:
		return "opt a person out"
	case dsr.ActionCorrect:
		return "correct data"
	case dsr.ActionOptIn:
		return "lift a suppression"
	}
	return string(a)
}
