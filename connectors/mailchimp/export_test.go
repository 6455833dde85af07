package mailchimp

// BaseURL is the URL c calls, for the tests.
func BaseURL(c *Connector) string { return c.base }
