package app

import (
	"time"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
)

// notDeclared is what the access package says of what a system's data map
// does not declare.
const notDeclared = "not declared"

// rightsNotice is what summary.json and index.html tell the person of the
// rights GDPR Art. 15(1)(e) and (f) say they must be told of.
const rightsNotice = "You may ask for your personal data to be corrected or erased, for its processing to be restricted, " +
	"and object to its processing (GDPR Art. 16 to 21), and you may lodge a complaint with a supervisory authority (GDPR Art. 77)."

// summary is summary.json: for each system that exported the person's
// data, what GDPR Art. 15(1) says they must be told, as the system's
// connector declares it in its data map, with what was found.
type summary struct {
	Request     manifestRequest `json:"request"`
	GeneratedAt time.Time       `json:"generated_at"`
	Records     int64           `json:"records"`
	Systems     []systemSummary `json:"systems"`
	Rights      string          `json:"rights"`
}

// systemSummary is one system's entry in summary.json. The data map's
// fields are omitted when not declared, and NotDeclared names them; a
// system whose connector declares no data map says so in DataMap.
type systemSummary struct {
	Name        string               `json:"name"`
	Records     int64                `json:"records"`
	Collections []manifestCollection `json:"collections"`
	// DataMap is "declared" or "not declared".
	DataMap           string   `json:"data_map"`
	Purpose           string   `json:"purpose,omitempty"`
	Categories        []string `json:"categories,omitempty"`
	Recipients        []string `json:"recipients,omitempty"`
	Retention         string   `json:"retention,omitempty"`
	Source            string   `json:"source,omitempty"`
	LegalBasis        string   `json:"legal_basis,omitempty"`
	LegalBasisArticle string   `json:"legal_basis_article,omitempty"`
	// NotDeclared names the fields the data map does not declare.
	NotDeclared []string `json:"not_declared,omitempty"`
}

// systemOf is the summary of an export job's system.
func systemOf(j dsr.Job, cols []manifestCollection) systemSummary {
	s := systemSummary{Name: j.Connector, Records: j.Records, Collections: cols, DataMap: notDeclared}
	dm := j.DataMap
	if dm == nil {
		dm = &dsr.DataMap{}
	} else {
		s.DataMap = "declared"
	}
	s.Purpose, s.Categories, s.Recipients, s.Retention, s.Source, s.LegalBasis =
		dm.Purpose, dm.Categories, dm.Recipients, dm.Retention, dm.Source, dm.LegalBasis
	s.LegalBasisArticle = connectors.LegalBasisArticle(dm.LegalBasis)
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"purpose", s.Purpose != ""}, {"categories", len(s.Categories) > 0}, {"recipients", len(s.Recipients) > 0},
		{"retention", s.Retention != ""}, {"source", s.Source != ""}, {"legal_basis", s.LegalBasis != ""},
	} {
		if !f.set {
			s.NotDeclared = append(s.NotDeclared, f.name)
		}
	}
	return s
}
