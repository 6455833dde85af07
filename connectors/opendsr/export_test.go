package opendsr

import "time"

// SetClock sets c's clock, for tests.
func SetClock(c *Connector, now func() time.Time) { c.now = now }
