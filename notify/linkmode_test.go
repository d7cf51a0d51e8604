package notify

import "testing"

func TestParseLinkMode(t *testing.T) {
	for _, s := range []string{"session-token", "one-time-link", "redirect"} {
		if m, err := ParseLinkMode(s); err != nil || string(m) != s {
			t.Errorf("ParseLinkMode(%q) = %q, %v", s, m, err)
		}
	}
	if _, err := ParseLinkMode("token"); err == nil {
		t.Error("ParseLinkMode(token) succeeded, want an error")
	}
}
