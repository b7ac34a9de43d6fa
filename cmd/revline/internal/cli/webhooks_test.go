package cli_test

import (
	"strings"
	"testing"
)

func TestWebhookUsageErrorsExitTwoBeforeConnecting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		args    []string
		mention string
	}{
		{"add without URL", []string{"webhooks", "add"}, "want 1 argument"},
		{"add with another scheme", []string{"webhooks", "add", "ftp://example.com/x"}, "want http or https"},
		{"add with user information", []string{"webhooks", "add", "https://u:p@example.com/x"}, "user information"},
		{"add with a bad app", []string{"webhooks", "add", "https://example.com/x", "--app", "My.App"}, "app"},
		{"add with a bad glob", []string{"webhooks", "add", "https://example.com/x", "--events", "app.["}, "syntax error"},
		{"remove with a bad id", []string{"webhooks", "remove", "nope"}, "12 hexadecimal"},
		{"deliveries without id", []string{"webhooks", "deliveries"}, "want 1 argument"},
		{"redeliver without SEQ", []string{"webhooks", "redeliver", "0123456789ab"}, "want 2 argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, append(tc.args, "--nats-url", unreachable)...)
			if res.code != 2 || !strings.Contains(res.stderr, tc.mention) || strings.Count(res.stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 2 and a line mentioning %q", res.code, res.stderr, tc.mention)
			}
		})
	}
}
