package httpapi

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/revline/revline/events"
)

// codeForbidden and codeUnsupportedMediaType are the codes of requests
// refused before routing.
const (
	codeForbidden            = events.CodeForbidden
	codeUnsupportedMediaType = "unsupported_media_type"
)

// checkRequest refuses what a web page in the user's browser could send to
// the loopback API: a deploy runs a shell command, so a cross-site form
// post or a DNS-rebinding page must never reach a handler.
//   - The Host must be localhost, an IP address, or an allowed host name
//     (a rebinding page arrives with its own name).
//   - A request that changes something must not come from another site
//     (Origin, Sec-Fetch-Site), and a body must be JSON (a form post cannot
//     send application/json without a CORS preflight, which this API never
//     grants).
func checkRequest(r *http.Request, allowedHosts []string) (Problem, bool) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host != "localhost" && net.ParseIP(host) == nil && !slices.Contains(allowedHosts, strings.ToLower(host)) {
		return newProblem(codeForbidden, fmt.Sprintf("host %q is not allowed; start serve with --http-allowed-hosts to allow it", host)), false
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
		return Problem{}, true
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return newProblem(codeForbidden, "cross-site requests may not change anything"), false
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if u, err := url.Parse(origin); err != nil || u.Host != r.Host {
			return newProblem(codeForbidden, fmt.Sprintf("origin %q may not change anything here", origin)), false
		}
	}
	if r.ContentLength != 0 {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			return newProblem(codeUnsupportedMediaType, "send the body as application/json"), false
		}
	}
	return Problem{}, true
}
