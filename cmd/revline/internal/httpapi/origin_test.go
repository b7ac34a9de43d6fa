package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// A web page in the user's browser must not be able to deploy (and so run
// a shell command) through the loopback API.
func TestBrowserRequestsFromOtherSitesAreRefused(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	deploy := `{"command":"touch /tmp/pwned"}`
	problem(t, s.do(t, "POST", "/v1/apps/web/deploy", deploy, "Origin", "https://evil.example"), http.StatusForbidden, "forbidden")
	problem(t, s.do(t, "POST", "/v1/apps/web/deploy", deploy, "Sec-Fetch-Site", "cross-site"), http.StatusForbidden, "forbidden")
	problem(t, s.do(t, "POST", "/v1/apps/web/deploy", deploy, "Content-Type", "text/plain"), http.StatusUnsupportedMediaType, "unsupported_media_type")

	// A DNS-rebinding page reaches the loopback address under its own name.
	req, err := http.NewRequestWithContext(testContext(t), "GET", s.url+"/v1/apps", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "evil.example:8080"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "forbidden") {
		t.Fatalf("request for host evil.example: %d %s", resp.StatusCode, body)
	}

	// The same origin is fine.
	ok[[]any](t, s.do(t, "GET", "/v1/apps", nil, "Origin", s.url), http.StatusOK)
}
