package dsr_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestCalendarAdd(t *testing.T) {
	t.Parallel()
	cal, err := dsr.NewCalendar([]string{"2026-12-25", " 2026-12-28 ", "", "2027-01-01"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		at   string
		p    dsr.Period
		want string
	}{
		{"days", "2026-11-24T10:00:00Z", dsr.Period{N: 45, Unit: dsr.Days}, "2027-01-08T10:00:00Z"},
		{"days ignore holidays", "2026-12-24T10:00:00Z", dsr.Period{N: 1, Unit: dsr.Days}, "2026-12-25T10:00:00Z"},
		{"months clamp at month end", "2026-01-31T09:00:00Z", dsr.Period{N: 1, Unit: dsr.Months}, "2026-02-28T09:00:00Z"},
		{"months leap year", "2028-01-31T09:00:00Z", dsr.Period{N: 1, Unit: dsr.Months}, "2028-02-29T09:00:00Z"},
		{"three months from a 31st", "2026-05-31T09:00:00Z", dsr.Period{N: 3, Unit: dsr.Months}, "2026-08-31T09:00:00Z"},
		{"business days skip the weekend", "2026-11-27T10:00:00Z", dsr.Period{N: 1, Unit: dsr.BusinessDays}, "2026-11-30T10:00:00Z"},
		{"business days from a Saturday", "2026-11-28T10:00:00Z", dsr.Period{N: 1, Unit: dsr.BusinessDays}, "2026-11-30T10:00:00Z"},
		{"business days skip holidays", "2026-12-24T10:00:00Z", dsr.Period{N: 1, Unit: dsr.BusinessDays}, "2026-12-29T10:00:00Z"},
		{"ten business days over new year", "2026-12-21T10:00:00Z", dsr.Period{N: 10, Unit: dsr.BusinessDays}, "2027-01-07T10:00:00Z"},
		{"zero", "2026-11-24T10:00:00Z", dsr.Period{}, "2026-11-24T10:00:00Z"},
		// Clocks count in UTC: a date given with a DST offset lands on the
		// same instant, and the weekday is the UTC one.
		{"offset input counts in UTC", "2026-03-29T01:30:00+02:00", dsr.Period{N: 1, Unit: dsr.Days}, "2026-03-29T23:30:00Z"},
		{"business day by the UTC weekday", "2026-11-27T23:30:00-05:00", dsr.Period{N: 1, Unit: dsr.BusinessDays}, "2026-11-30T04:30:00Z"},
	}
	for _, tt := range tests {
		got := cal.Add(mustTime(t, tt.at), tt.p)
		if !got.Equal(mustTime(t, tt.want)) || got.Location() != time.UTC {
			t.Errorf("%s: Add(%s, %s) = %s, want %s UTC", tt.name, tt.at, tt.p, got, tt.want)
		}
	}
}

func TestCalendarRejectsBadHolidays(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"25/12/2026", "2026-13-01", "2026-02-30", "christmas"} {
		if _, err := dsr.NewCalendar([]string{h}); err == nil || !strings.Contains(err.Error(), h) {
			t.Errorf("NewCalendar(%q) = %v, want an error naming it", h, err)
		}
	}
}

func TestCalendarHolidays(t *testing.T) {
	t.Parallel()
	cal, err := dsr.NewCalendar([]string{"2027-01-01", "2026-12-25", "2026-11-26"})
	if err != nil {
		t.Fatal(err)
	}
	got := cal.Holidays(mustTime(t, "2026-11-26T15:00:00Z"), mustTime(t, "2026-12-31T00:00:00Z"))
	if strings.Join(got, ",") != "2026-11-26,2026-12-25" {
		t.Errorf("Holidays = %v", got)
	}
}

func TestRuleFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reg                         dsr.Regulation
		typ                         dsr.Type
		respond, extension, receipt string
		pausable                    bool
	}{
		{dsr.RegulationGDPR, dsr.TypeAccess, "1 months", "2 months", "none", true},
		{dsr.RegulationGDPR, dsr.TypeOptOut, "1 months", "2 months", "none", true},
		{dsr.RegulationCCPA, dsr.TypeDeletion, "45 days", "45 days", "10 business days", false},
		{dsr.RegulationCCPA, dsr.TypeOptOut, "15 business days", "none", "none", false},
		{dsr.RegulationLGPD, dsr.TypeAccess, "15 days", "none", "none", false},
		{dsr.RegulationPIPEDA, dsr.TypeAccess, "30 days", "30 days", "none", false},
		{dsr.RegulationVCDPA, dsr.TypeDeletion, "45 days", "45 days", "none", false},
		{dsr.RegulationCTDPA, dsr.TypeAccess, "45 days", "45 days", "none", false},
	}
	for _, tt := range tests {
		r := dsr.RuleFor(tt.reg, tt.typ)
		if r.Respond.String() != tt.respond || r.Extension.String() != tt.extension || r.Receipt.String() != tt.receipt || r.Pausable != tt.pausable {
			t.Errorf("%s %s: respond %s, extension %s, receipt %s, pausable %v; want %s, %s, %s, %v", tt.reg, tt.typ,
				r.Respond, r.Extension, r.Receipt, r.Pausable, tt.respond, tt.extension, tt.receipt, tt.pausable)
		}
		if r.Basis == "" || r.Regulation != tt.reg {
			t.Errorf("%s %s: rule names no basis or the wrong regulation: %+v", tt.reg, tt.typ, r)
		}
	}
	for reg, want := range map[dsr.Regulation]bool{dsr.RegulationVCDPA: true, dsr.RegulationCTDPA: true, dsr.RegulationGDPR: false, dsr.RegulationCCPA: false} {
		if dsr.Appealable(reg) != want {
			t.Errorf("Appealable(%s) = %v, want %v", reg, !want, want)
		}
	}
}

// TestIntakeTimesByTheCalendar checks that a request's due date and
// receipt date follow its rule and the intake's calendar.
func TestIntakeTimesByTheCalendar(t *testing.T) {
	t.Parallel()
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	cal, err := dsr.NewCalendar([]string{"2026-12-25"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		reg          dsr.Regulation
		typ          dsr.Type
		at           string
		due, receipt string
	}{
		{"ccpa access: receipt in 10 business days", dsr.RegulationCCPA, dsr.TypeAccess, "2026-12-18T10:00:00Z", "2027-02-01T10:00:00Z", "2027-01-04T10:00:00Z"},
		{"ccpa opt-out over a holiday", dsr.RegulationCCPA, dsr.TypeOptOut, "2026-12-18T10:00:00Z", "2027-01-11T10:00:00Z", ""},
		{"gdpr has no receipt rule", dsr.RegulationGDPR, dsr.TypeAccess, "2026-12-18T10:00:00Z", "2027-01-18T10:00:00Z", ""},
	}
	for _, tt := range tests {
		r, err := dsr.NewRequest(dsr.Intake{Type: tt.typ, Regulation: tt.reg, Source: "test", FiledBy: "tester", Status: dsr.StatusVerified,
			Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject}},
			ReceivedAt: mustTime(t, tt.at), Calendar: cal}, idx)
		if err != nil {
			t.Fatal(err)
		}
		if !r.DueAt.Equal(mustTime(t, tt.due)) {
			t.Errorf("%s: due %s, want %s", tt.name, r.DueAt, tt.due)
		}
		switch {
		case tt.receipt == "" && r.ReceiptDueAt != nil:
			t.Errorf("%s: receipt due %s, want none", tt.name, r.ReceiptDueAt)
		case tt.receipt != "" && (r.ReceiptDueAt == nil || !r.ReceiptDueAt.Equal(mustTime(t, tt.receipt))):
			t.Errorf("%s: receipt due %v, want %s", tt.name, r.ReceiptDueAt, tt.receipt)
		}
	}
}
