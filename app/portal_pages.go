package app

import "slices"

// CorrectableFields names the fields of a person's data the configured
// connectors can correct, sorted; nil when this process does not know them
// (it does not load the connectors) or none can be corrected. The portal's
// pages offer a correction of these fields; an agent approves every one
// before it is applied (see portalIntake).
func (s *Service) CorrectableFields() []string {
	f := s.correctFields()
	if len(f) == 0 {
		return nil
	}
	f = slices.Clone(f)
	slices.Sort(f)
	return f
}
