package main

import (
	"net/url"
)

// redactURL hides the password of a URL so it can be printed.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
