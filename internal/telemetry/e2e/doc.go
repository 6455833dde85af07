// Package e2e holds the end-to-end test of dsar's traces: one request
// filed through the API and run by the workers, its whole trace checked.
// It is a package of its own because the test installs a global tracer
// provider, which no other test binary should see.
package e2e
