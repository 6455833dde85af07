package apitest

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// Lint reports, one message per finding, what [Validate] (kin-openapi)
// does not check but a linter such as Redocly CLI does:
//
//   - every value of a schema's `examples` (OpenAPI 3.1, JSON Schema
//     2020-12) must match its schema; kin-openapi checks only `example`
//     and the examples of media types and parameters;
//   - every name in a schema's `required` must be a property defined by the
//     schema: in its `properties`, in one of its `allOf` members, or in
//     every member of its `anyOf` or `oneOf`. A schema that is itself a
//     member of an `allOf`, `anyOf` or `oneOf` may also rely on what the
//     schema around it defines (a branch requiring a property of the whole);
//     one under `if`, `then`, `else` or `not` may not;
//   - every operation must document at least one 4xx response.
//
// Findings are sorted, so a test can print them as they come.
func Lint(doc *openapi3.T) []string {
	l := &linter{}
	if doc.Components != nil {
		for _, name := range sortedNames(doc.Components.Schemas) {
			l.schema("#/components/schemas/"+name, doc.Components.Schemas[name], nil)
		}
		for _, name := range sortedNames(doc.Components.Parameters) {
			if p := doc.Components.Parameters[name]; p != nil && p.Value != nil {
				l.schema("#/components/parameters/"+name+"/schema", p.Value.Schema, nil)
			}
		}
		for _, name := range sortedNames(doc.Components.Headers) {
			if h := doc.Components.Headers[name]; h != nil && h.Value != nil {
				l.schema("#/components/headers/"+name+"/schema", h.Value.Schema, nil)
			}
		}
		for _, name := range sortedNames(doc.Components.RequestBodies) {
			if b := doc.Components.RequestBodies[name]; b != nil && b.Value != nil {
				l.content("#/components/requestBodies/"+name, b.Value.Content)
			}
		}
		for _, name := range sortedNames(doc.Components.Responses) {
			l.response("#/components/responses/"+name, doc.Components.Responses[name])
		}
	}
	if doc.Paths != nil {
		for path, item := range doc.Paths.Map() {
			for method, op := range item.Operations() {
				l.operation(method+" "+path, op)
			}
		}
	}
	slices.Sort(l.out)
	return l.out
}

type linter struct {
	out []string
}

func (l *linter) errorf(format string, args ...any) {
	l.out = append(l.out, fmt.Sprintf(format, args...))
}

func (l *linter) operation(where string, op *openapi3.Operation) {
	has4xx := false
	if op.Responses != nil {
		for code, r := range op.Responses.Map() {
			if strings.HasPrefix(code, "4") {
				has4xx = true
			}
			l.response(where+" "+code, r)
		}
	}
	if !has4xx {
		l.errorf("%s: no 4xx response", where)
	}
	for _, p := range op.Parameters {
		if p != nil && p.Ref == "" && p.Value != nil {
			l.schema(where+" parameter "+p.Value.Name, p.Value.Schema, nil)
		}
	}
	if b := op.RequestBody; b != nil && b.Ref == "" && b.Value != nil {
		l.content(where+" request body", b.Value.Content)
	}
}

func (l *linter) response(where string, r *openapi3.ResponseRef) {
	if r == nil || r.Ref != "" || r.Value == nil {
		return // a reference is linted where it is defined
	}
	for _, name := range sortedNames(r.Value.Headers) {
		if h := r.Value.Headers[name]; h != nil && h.Ref == "" && h.Value != nil {
			l.schema(where+" header "+name, h.Value.Schema, nil)
		}
	}
	l.content(where, r.Value.Content)
}

func (l *linter) content(where string, c openapi3.Content) {
	for _, mt := range sortedNames(c) {
		if m := c[mt]; m != nil {
			l.schema(where+" "+mt, m.Schema, nil)
		}
	}
}

// schema lints s and what it contains. top is the schema whose allOf,
// anyOf or oneOf s is a member of, followed up through such memberships;
// nil when s is not such a member.
func (l *linter) schema(where string, ref *openapi3.SchemaRef, top *openapi3.Schema) {
	if ref == nil || ref.Value == nil {
		return
	}
	if ref.Ref != "" {
		return // linted where it is defined
	}
	s := ref.Value
	for _, name := range s.Required {
		if !defines(s, name, map[*openapi3.Schema]bool{}) && (top == nil || !defines(top, name, map[*openapi3.Schema]bool{})) {
			l.errorf("%s: required property %q is not defined", where, name)
		}
	}
	for i, ex := range s.Examples {
		if err := s.VisitJSON(ex, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
			l.errorf("%s: examples[%d] does not match its schema: %v", where, i, err)
		}
	}
	own := func(key string, sub *openapi3.SchemaRef) { l.schema(where+"/"+key, sub, nil) }
	memberTop := top
	if memberTop == nil {
		memberTop = s
	}
	for kw, list := range map[string]openapi3.SchemaRefs{"allOf": s.AllOf, "anyOf": s.AnyOf, "oneOf": s.OneOf} {
		for i, sub := range list {
			l.schema(fmt.Sprintf("%s/%s/%d", where, kw, i), sub, memberTop)
		}
	}
	for _, name := range sortedNames(s.Properties) {
		own("properties/"+name, s.Properties[name])
	}
	for i, sub := range s.PrefixItems {
		own(fmt.Sprintf("prefixItems/%d", i), sub)
	}
	own("items", s.Items)
	own("not", s.Not)
	own("if", s.If)
	own("then", s.Then)
	own("else", s.Else)
	own("contains", s.Contains)
	own("propertyNames", s.PropertyNames)
	own("additionalProperties", s.AdditionalProperties.Schema)
	own("unevaluatedProperties", s.UnevaluatedProperties.Schema)
	own("unevaluatedItems", s.UnevaluatedItems.Schema)
	for _, name := range sortedNames(s.PatternProperties) {
		own("patternProperties/"+name, s.PatternProperties[name])
	}
	for _, name := range sortedNames(s.DependentSchemas) {
		own("dependentSchemas/"+name, s.DependentSchemas[name])
	}
	for _, name := range sortedNames(s.Defs) {
		own("$defs/"+name, s.Defs[name])
	}
}

// defines reports whether s defines the property name: in its properties,
// in one of its allOf members, or in every member of its anyOf or oneOf.
func defines(s *openapi3.Schema, name string, seen map[*openapi3.Schema]bool) bool {
	if s == nil || seen[s] {
		return false
	}
	seen[s] = true
	if _, ok := s.Properties[name]; ok {
		return true
	}
	for _, sub := range s.AllOf {
		if sub != nil && defines(sub.Value, name, seen) {
			return true
		}
	}
	all := func(list openapi3.SchemaRefs) bool {
		if len(list) == 0 {
			return false
		}
		for _, sub := range list {
			if sub == nil || !defines(sub.Value, name, maps.Clone(seen)) {
				return false
			}
		}
		return true
	}
	return all(s.AnyOf) || all(s.OneOf)
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
