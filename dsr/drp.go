package dsr

// SourceDRP is the source of requests authorised agents filed through the
// Data Rights Protocol (handlers/drpapi).
const SourceDRP = "drp"

// DRPLink is what a request filed through the Data Rights Protocol keeps of
// it: the agent that filed it, the agent's own id for it, the right as the
// agent named it, and where its status goes on every change.
type DRPLink struct {
	// Agent is the agent's id in the directory.
	Agent string `bson:"agent" json:"agent"`
	// AgentRequestID is the agent's agent-request-id, if it gave one.
	AgentRequestID string `bson:"agent_request_id,omitempty" json:"agent_request_id,omitempty"`
	// Exercise is the right as the protocol names it (sale:opt_out,
	// access:categories, ...).
	Exercise string `bson:"exercise" json:"exercise"`
	// Callback is the agent's status_callback URL; empty: the agent polls.
	Callback string `bson:"callback,omitempty" json:"callback,omitempty"`
}
