package telemetry

import "testing"

// An attribute value anyone can send (an id in a path) is cut at
// MaxAttributeLength, unless the SDK's own variable says otherwise.
func TestSpanLimits(t *testing.T) {
	if got := spanLimits().AttributeValueLengthLimit; got != MaxAttributeLength {
		t.Errorf("attribute value limit %d, want %d", got, MaxAttributeLength)
	}
	t.Setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "64")
	if got := spanLimits().AttributeValueLengthLimit; got != 64 {
		t.Errorf("attribute value limit %d with OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT=64", got)
	}
}
