package webhook_test

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/webhook"
)

var fence = regexp.MustCompile("(?s)```(yaml|json)[^\n]*\n(.*?)```")

// TestDocs: the examples of docs/connectors/webhook.md hold: its connectors
// file loads, its call is a Request, its answers are taken.
func TestDocs(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/connectors/webhook.md")
	if err != nil {
		t.Fatal(err)
	}
	var yamls, jsons [][]byte
	for _, m := range fence.FindAllSubmatch(doc, -1) {
		if string(m[1]) == "yaml" {
			yamls = append(yamls, m[2])
		} else {
			jsons = append(jsons, m[2])
		}
	}
	if len(yamls) != 1 || len(jsons) != 3 {
		t.Fatalf("%d yaml and %d json examples; want 1 and 3 (the file; the call, the answer, the callback)", len(yamls), len(jsons))
	}
	reg, err := connectors.Parse(t.Context(), yamls[0], connectors.Types{webhook.Type: webhook.Factory(connectors.Deps{})}, env)
	if err != nil {
		t.Fatalf("the example file: %v", err)
	}
	c, ok := reg.Lookup("crm")
	if !ok {
		t.Fatal("the example file has no connector crm")
	}

	var call webhook.Request
	dec := json.NewDecoder(bytes.NewReader(jsons[0]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&call); err != nil || call.Version != 1 || call.Action != connectors.ActionExport {
		t.Errorf("the example call: %+v, %v", call, err)
	}
	out := &recorder{}
	if res, err := connectors.Answer(t.Context(), c, connectors.ActionExport, "", jsons[1], out); err != nil || res.Records != 3 || len(out.records["tickets"]) != 2 {
		t.Errorf("the example answer: %+v, %v", res, err)
	}
	if res, err := connectors.Answer(t.Context(), c, connectors.ActionErase, "op-7731", jsons[2], nil); err != nil || res.Records != 1 {
		t.Errorf("the example callback: %+v, %v", res, err)
	}
}
