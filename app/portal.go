package app

// portalStore is what the portal's filing and verification need of the
// store, beyond requestStore (the portal's files declare it).
type portalStore interface{}
