// Package drp is the wire format of the Data Rights Protocol 1.0 (DRP,
// consumer-reports-innovation-lab/data-rights-protocol), the covered
// business's side: the signed messages authorised agents send (libsodium
// combined mode: a 64-byte Ed25519 signature followed by the JSON, base64),
// checked in the protocol's order; the agents' directory entries; the
// pair-wise bearer tokens; the status object and its errors.
//
// The application maps an exercise onto an intake; [StatusOf] maps a
// request onto the protocol's status.
package drp
