package app

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
)

// CorrectionInput is one change a correction request asks for (its JSON
// form is that of the agent API's "corrections" items): Field, an identity
// kind (dsr.Kinds) or a field a connector owns (name,
// address...), is to hold Value.
type CorrectionInput struct {
	Field string `json:"field"`
	Value string `json:"value"`
}

// checkCorrections checks the corrections of a filing of type typ, adding
// what is wrong to ve under "corrections" (the list) or
// "corrections[i].field" and "corrections[i].value", and returns them
// normalised. A correction request carries 1 to dsr.MaxCorrections of
// them, each field once; any other type none. A field must be an identity
// kind or a well-formed name and, when owned is known (not nil), one some
// configured connector can correct. An identity kind's value is normalised
// as an identity given at intake; any other is one or more lines of
// visible text of at most dsr.MaxCorrectionValue characters, kept as
// written (trimmed): it is written literally, never read as a query.
func checkCorrections(ve *dsr.ValidationError, typ dsr.Type, cs []CorrectionInput, owned []string) []dsr.FieldValue {
	if typ != dsr.TypeCorrection {
		if len(cs) > 0 {
			ve.Add("corrections", "only with type %s", dsr.TypeCorrection)
		}
		return nil
	}
	if len(cs) == 0 || len(cs) > dsr.MaxCorrections {
		ve.Add("corrections", "required with type %s: give 1 to %d changes, each {field, value}", dsr.TypeCorrection, dsr.MaxCorrections)
		return nil
	}
	var out []dsr.FieldValue
	seen := map[string]bool{}
	for i, c := range cs {
		at := fmt.Sprintf("corrections[%d].", i)
		field := c.Field
		switch {
		case !connectors.ValidCorrectField(field):
			ve.Add(at+"field", "must be an identity kind (%s) or a field name of a-z, 0-9 and _ (at most 63, starting with a letter)", Join(dsr.Kinds))
			continue
		case owned != nil && !slices.Contains(owned, field):
			ve.Add(at+"field", "%q: no configured connector can correct it (fields they own: %s)", field, ownedList(owned))
			continue
		case seen[field]:
			ve.Add(at+"field", "%q is given twice: give each field once", field)
			continue
		}
		seen[field] = true
		var v string
		if k := dsr.Kind(field); k.Valid() {
			n, err := dsr.NormalizeGiven(k, c.Value)
			if err != nil {
				ve.Add(at+"value", "%s", err)
				continue
			}
			v = n
		} else {
			v = strings.TrimSpace(c.Value)
			switch n := utf8.RuneCountInString(v); {
			case n == 0:
				ve.Add(at+"value", "required: the value the field is to hold")
				continue
			case n > dsr.MaxCorrectionValue:
				ve.Add(at+"value", "must be at most %d characters", dsr.MaxCorrectionValue)
				continue
			}
			if !ve.Text(at+"value", v, dsr.Lines) {
				continue
			}
		}
		out = append(out, dsr.FieldValue{Field: field, Value: v})
	}
	return out
}

func ownedList(owned []string) string {
	if len(owned) == 0 {
		return "none"
	}
	return strings.Join(owned, ", ")
}
