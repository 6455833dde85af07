package handlers

import (
	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
)

// What the portal's handlers share with the agent's until the portal's
// filing moves into app.

type subjectBody = app.Subject

func join[T ~string](vals []T) string { return app.Join(vals) }

// createBody is what every filing has.
type createBody struct {
	Type       string      `json:"type"`
	Regulation string      `json:"regulation"`
	Subject    subjectBody `json:"subject"`
}

// validate checks the body and returns the intake it describes, or every
// problem found.
func (b createBody) validate() (dsr.Intake, error) {
	return app.BaseIntake(b.Type, b.Regulation, b.Subject)
}
