package dsr

// SourceOpenDSR is the source of requests controllers passed to this
// service, as their processor, by OpenDSR (handlers/opendsrapi).
const SourceOpenDSR = "opendsr"

// OpenDSRLink is what a request a controller passed by OpenDSR keeps of
// it: the controller, its id for the request, the type as it named it,
// and where its status goes.
type OpenDSRLink struct {
	// Controller is the controller's id in this service's settings.
	Controller string `bson:"controller" json:"controller"`
	// SubjectRequestID is the controller's subject_request_id.
	SubjectRequestID string `bson:"subject_request_id" json:"subject_request_id"`
	// Type is the subject_request_type (access, portability, erasure).
	Type string `bson:"type" json:"type"`
	// Callbacks are the controller's status_callback_urls.
	Callbacks []string `bson:"callbacks,omitempty" json:"callbacks,omitempty"`
}
