package dsr

import (
	"strings"
	"time"
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
	for _, x := range Regulations {
		if r == x {
			return true
		}
	}
	return false
}

// DueAt returns when a response is legally due for a request received at
// receivedAt (the clock starts at receipt, not at verification), before any
// extension:
//
//   - GDPR: one calendar month (Art. 12(3)); a month from 31 January ends on
//     the last day of February.
//   - CCPA/CPRA: 45 calendar days (11 CCR 7021); opt-out within 15 business
//     days (11 CCR 7026).
//   - LGPD: 15 days (Art. 19). PIPEDA: 30 days. VCDPA, CTDPA: 45 days.
//
// Business days skip Saturdays and Sundays; public holidays come with the
// full deadline engine. The result is in UTC.
func DueAt(reg Regulation, t Type, receivedAt time.Time) time.Time {
	at := receivedAt.UTC()
	switch reg {
	case RegulationGDPR:
		return AddMonths(at, 1)
	case RegulationCCPA:
		if t == TypeOptOut {
			return AddBusinessDays(at, 15)
		}
		return at.AddDate(0, 0, 45)
	case RegulationLGPD:
		return at.AddDate(0, 0, 15)
	case RegulationPIPEDA:
		return at.AddDate(0, 0, 30)
	default: // VCDPA, CTDPA and the other US state laws
		return at.AddDate(0, 0, 45)
	}
}

// Extended returns the latest due date an extension may give a request of
// type t under reg, first due at due, and whether the regulation allows one:
// GDPR two more months (Art. 12(3)); CCPA, VCDPA, CTDPA 45 more days (none
// for a CCPA opt-out); PIPEDA 30 more days; LGPD none.
func Extended(reg Regulation, t Type, due time.Time) (time.Time, bool) {
	due = due.UTC()
	switch reg {
	case RegulationGDPR:
		return AddMonths(due, 2), true
	case RegulationCCPA:
		if t == TypeOptOut {
			return time.Time{}, false
		}
		return due.AddDate(0, 0, 45), true
	case RegulationVCDPA, RegulationCTDPA:
		return due.AddDate(0, 0, 45), true
	case RegulationPIPEDA:
		return due.AddDate(0, 0, 30), true
	}
	return time.Time{}, false
}

// AddMonths adds n calendar months, ending on the last day of the target
// month when it is shorter than the start day (31 Jan + 1 month = 28/29 Feb).
func AddMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	last := first.AddDate(0, 1, -1).Day()
	if d > last {
		d = last
	}
	return first.AddDate(0, 0, d-1)
}

// AddBusinessDays adds n days that are not Saturday or Sunday.
func AddBusinessDays(t time.Time, n int) time.Time {
	for n > 0 {
		t = t.AddDate(0, 0, 1)
		if wd := t.Weekday(); wd != time.Saturday && wd != time.Sunday {
			n--
		}
	}
	return t
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
