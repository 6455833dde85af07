package apitest_test

import (
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/handlers/apitest"
)

// lintDoc wraps one operation's responses and some component schemas in a
// minimal OpenAPI 3.1 document.
func lintDoc(t *testing.T, responses, schemas string) *openapi3.T {
	t.Helper()
	spec := `openapi: 3.1.0
info: {title: t, version: "1"}
paths:
  /x:
    get:
      operationId: x
      responses:
` + responses + `
components:
  schemas:
` + schemas
	doc, err := openapi3.NewLoader().LoadFromData([]byte(spec))
	if err != nil {
		t.Fatalf("load: %v\n%s", err, spec)
	}
	return doc
}

const ok200 = `        "200": {description: ok}
        "404": {description: no}
`

func TestLint(t *testing.T) {
	tests := []struct {
		name      string
		responses string
		schemas   string
		want      []string
	}{
		{
			name: "clean", responses: ok200,
			schemas: `    A:
      type: object
      required: [a, b, c]
      properties: {a: {type: string, examples: [x]}}
      allOf:
        - properties: {b: {type: string}}
      oneOf:
        - properties: {c: {const: 1}}
          required: [a]
        - properties: {c: {const: 2}}
`,
		},
		{
			name: "no 4xx", responses: `        "200": {description: ok}
        "500": {description: failed}
`,
			want: []string{"GET /x: no 4xx response"},
		},
		{
			name: "4XX range counts", responses: `        "200": {description: ok}
        "4XX": {description: refused}
`,
		},
		{
			name: "required not defined", responses: ok200,
			schemas: `    A:
      type: object
      required: [a, b]
      properties: {a: {type: string}}
`,
			want: []string{`#/components/schemas/A: required property "b" is not defined`},
		},
		{
			name: "required under then is not helped by the whole", responses: ok200,
			schemas: `    A:
      type: object
      properties: {a: {type: string}, e: {type: string}}
      if: {properties: {a: {const: v}}}
      then: {required: [e]}
`,
			want: []string{`#/components/schemas/A/then: required property "e" is not defined`},
		},
		{
			name: "anyOf defines only what every member defines", responses: ok200,
			schemas: `    A:
      type: object
      required: [b]
      anyOf:
        - properties: {b: {type: string}}
        - properties: {c: {type: string}}
`,
			want: []string{`#/components/schemas/A: required property "b" is not defined`},
		},
		{
			name: "inline response schema", responses: `        "404":
          description: no
          content:
            application/json:
              schema: {type: object, required: [openapi]}
`,
			want: []string{`GET /x 404 application/json: required property "openapi" is not defined`},
		},
		{
			name: "schema examples", responses: ok200,
			schemas: `    A:
      type: object
      additionalProperties: false
      properties:
        n: {type: integer, minimum: 1, examples: [1, 0]}
      examples: [{n: 2}, {m: 1}]
`,
			want: []string{
				`#/components/schemas/A/properties/n: examples[1] does not match its schema`,
				`#/components/schemas/A: examples[1] does not match its schema`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := apitest.Lint(lintDoc(t, tc.responses, tc.schemas))
			// Cut the validator's wording: it is kin-openapi's business.
			for i, g := range got {
				if before, _, ok := strings.Cut(g, "does not match its schema"); ok {
					got[i] = before + "does not match its schema"
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}
