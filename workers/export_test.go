package workers

// Redrive exposes the sweep's handling of one stale request to the tests.
var Redrive = (*SweepHandler).redrive
