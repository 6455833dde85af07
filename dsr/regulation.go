package dsr

import (
	"slices"
	"strings"
)

// Regulation is the law under which a request is made.
type Regulation string

// The regulations the service knows. Their deadlines are in [DueAt].
const (
	RegulationGDPR   Regulation = "gdpr"   // EU/UK GDPR
	RegulationCCPA   Regulation = "ccpa"   // California CCPA as amended by CPRA
	RegulationLGPD   Regulation = "lgpd"   // Brazil
	RegulationVCDPA  Regulation = "vcdpa"  // Virginia
	RegulationCTDPA  Regulation = "ctdpa"  // Connecticut
	RegulationPIPEDA Regulation = "pipeda" // Canada
)

// Regulations lists every known regulation.
var Regulations = []Regulation{
	RegulationGDPR, RegulationCCPA, RegulationLGPD,
	RegulationVCDPA, RegulationCTDPA, RegulationPIPEDA,
}

// Valid reports whether r is a known regulation.
func (r Regulation) Valid() bool {
	return slices.Contains(Regulations, r)
}

// jurisdictions maps where a person lives (ISO 3166-1 alpha-2 country, or
// ISO 3166-2 subdivision for US states) to the regulation that applies.
var jurisdictions = map[string]Regulation{
	"US-CA": RegulationCCPA, "US-VA": RegulationVCDPA, "US-CT": RegulationCTDPA,
	"BR": RegulationLGPD, "CA": RegulationPIPEDA, "GB": RegulationGDPR,
}

func init() {
	// The EU and the rest of the EEA.
	for _, c := range []string{"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
		"LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO"} {
		jurisdictions[c] = RegulationGDPR
	}
}

// RegulationFor returns the regulation of a jurisdiction ("DE", "US-CA"),
// matched without regard to case.
func RegulationFor(jurisdiction string) (Regulation, bool) {
	r, ok := jurisdictions[strings.ToUpper(strings.TrimSpace(jurisdiction))]
	return r, ok
}
