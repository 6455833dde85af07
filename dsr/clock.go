package dsr

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// RulesVersion names the version of the deadline rules below; it is
// recorded with each explanation of a due date, so a rule change later can
// be told apart from the rule a request was timed by.
const RulesVersion = "2026-11"

// Unit is how a period counts.
type Unit string

// The units.
const (
	Months       Unit = "months"        // calendar months, clamped at month ends
	Days         Unit = "days"          // calendar days
	BusinessDays Unit = "business_days" // days not on a weekend or a listed holiday
)

// Period is a length of time under a rule.
type Period struct {
	N    int  `json:"n"`
	Unit Unit `json:"unit"`
}

func (p Period) String() string {
	if p.N == 0 {
		return "none"
	}
	return fmt.Sprintf("%d %s", p.N, strings.ReplaceAll(string(p.Unit), "_", " "))
}

// Rule is how a regulation times one kind of request.
type Rule struct {
	Regulation Regulation `json:"regulation"`
	// Basis cites the provision.
	Basis string `json:"basis"`
	// Respond is the time to answer, from receipt.
	Respond Period `json:"respond"`
	// Extension is the one extension allowed (zero: none), to be decided
	// and told to the person before the first due date.
	Extension Period `json:"extension,omitzero"`
	// Receipt is the time to confirm receipt (zero: no separate rule).
	Receipt Period `json:"receipt,omitzero"`
	// Pausable says the clock may stop while the business waits for
	// information it asked for to confirm the person's identity.
	Pausable bool `json:"pausable"`
}

// RuleFor returns the rule that times a request of type t under reg.
func RuleFor(reg Regulation, t Type) Rule {
	if t == TypeOptIn {
		return Rule{Regulation: reg, Basis: "no law sets a deadline for honouring an opt-in: the service gives itself an opt-out's 15 business days",
			Respond: Period{15, BusinessDays}}
	}
	switch reg {
	case RegulationGDPR:
		return Rule{Regulation: reg, Basis: "GDPR Art. 12(3): one month, extendable by two; Art. 12(6) lets the controller ask for information to confirm identity",
			Respond: Period{1, Months}, Extension: Period{2, Months}, Pausable: true}
	case RegulationCCPA:
		if t == TypeOptOut {
			return Rule{Regulation: reg, Basis: "11 CCR 7026: opt-out as soon as feasible, at most 15 business days",
				Respond: Period{15, BusinessDays}}
		}
		return Rule{Regulation: reg, Basis: "11 CCR 7021: 45 calendar days whatever verification takes, extendable by 45; receipt confirmed within 10 business days",
			Respond: Period{45, Days}, Extension: Period{45, Days}, Receipt: Period{10, BusinessDays}}
	case RegulationLGPD:
		return Rule{Regulation: reg, Basis: "LGPD Art. 19: a complete declaration within 15 days", Respond: Period{15, Days}}
	case RegulationPIPEDA:
		return Rule{Regulation: reg, Basis: "PIPEDA 8(3)-(4): 30 days, extendable by 30", Respond: Period{30, Days}, Extension: Period{30, Days}}
	default: // VCDPA, CTDPA and the other US state laws
		return Rule{Regulation: reg, Basis: "45 days, extendable once by 45 with notice within the first 45",
			Respond: Period{45, Days}, Extension: Period{45, Days}}
	}
}

// AppealPeriod is how long a business has to answer an appeal against a
// denial under the US state laws that grant one (VCDPA, CTDPA).
var AppealPeriod = Period{60, Days}

// Appealable reports whether a denial under reg can be appealed.
func Appealable(reg Regulation) bool {
	return reg == RegulationVCDPA || reg == RegulationCTDPA
}

// Calendar counts business days: not Saturdays, not Sundays, not its
// holidays. The zero value has no holidays.
type Calendar struct {
	holidays map[string]bool // "2006-01-02", UTC
}

// NewCalendar returns a calendar with holidays given as YYYY-MM-DD.
func NewCalendar(holidays []string) (Calendar, error) {
	c := Calendar{holidays: map[string]bool{}}
	for _, h := range holidays {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if _, err := time.Parse(time.DateOnly, h); err != nil {
			return Calendar{}, fmt.Errorf("holiday %q: want YYYY-MM-DD", h)
		}
		c.holidays[h] = true
	}
	return c, nil
}

// BusinessDay reports whether the UTC day of t is a business day.
func (c Calendar) BusinessDay(t time.Time) bool {
	t = t.UTC()
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	return !c.holidays[t.Format(time.DateOnly)]
}

// Holidays lists the calendar's holidays from..to (inclusive), sorted.
func (c Calendar) Holidays(from, to time.Time) []string {
	var out []string
	for h := range c.holidays {
		if d, _ := time.Parse(time.DateOnly, h); !d.Before(from.UTC().Truncate(24*time.Hour)) && !d.After(to) {
			out = append(out, h)
		}
	}
	sort.Strings(out)
	return out
}

// Add adds a period to t, in UTC.
func (c Calendar) Add(t time.Time, p Period) time.Time {
	t = t.UTC()
	switch p.Unit {
	case Months:
		return AddMonths(t, p.N)
	case BusinessDays:
		for n := p.N; n > 0; {
			t = t.AddDate(0, 0, 1)
			if c.BusinessDay(t) {
				n--
			}
		}
		return t
	}
	return t.AddDate(0, 0, p.N)
}

// Due returns when a request of type t under reg received at receivedAt is
// due, before any extension or pause.
func (c Calendar) Due(reg Regulation, t Type, receivedAt time.Time) time.Time {
	return c.Add(receivedAt, RuleFor(reg, t).Respond)
}

// DueAt returns when a request is due under the default calendar
// (weekends only): see [Calendar.Due] and [RuleFor].
func DueAt(reg Regulation, t Type, receivedAt time.Time) time.Time {
	return Calendar{}.Due(reg, t, receivedAt)
}

// Extended returns the latest due date the one extension its rule allows
// gives a request of type t under reg, first due at due, and whether the
// rule allows one (see [RuleFor]).
func Extended(reg Regulation, t Type, due time.Time) (time.Time, bool) {
	r := RuleFor(reg, t)
	if r.Extension.N == 0 {
		return time.Time{}, false
	}
	return Calendar{}.Add(due, r.Extension), true
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
