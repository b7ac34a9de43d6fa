package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections/queryapi"
)

// wantQueryError checks that err is a query error with code.
func wantQueryError(t *testing.T, what string, err error, code string) {
	t.Helper()
	var qerr *queryapi.Error
	if !errors.As(err, &qerr) || qerr.Code != code {
		t.Errorf("%s: %v; want a %s query error", what, err, code)
		return
	}
	if strings.Contains(qerr.Message, "\n") {
		t.Errorf("%s: the error %q is not one line", what, qerr.Message)
	}
}

// A query is answered only when signed by a live token, and only about
// the apps that token may view: a viewer of one app lists that app alone,
// and asking about another app's revisions, runners, rollouts or runner
// logs is forbidden. The version stays open.
func TestQueriesAreAnsweredOnlyAboutTheTokensApps(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{})
	cli := asClient(t, addrs)
	cli("deploy", "web", "--command", runnerBin)
	cli("deploy", "api", "--command", runnerBin)
	a := attacker(t, addrs)
	webViewer, webViewerFile := a.tokenFile("web-viewer", "viewer", "--app", "web")
	globViewer := a.token("w-viewer", "viewer", "--app", "w*")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	admin := queryapi.NewClient(a.nc, queryapi.SignedBy(fileSigner(t, addrs.AdminTokenFile)))
	apiRunners, err := admin.Runners(ctx, "api", queryapi.RunnerFilter{All: true}, queryapi.PageRequest{}, 0)
	if err != nil || len(apiRunners.Items) == 0 {
		t.Fatalf("api's runners as the admin: %+v, %v", apiRunners, err)
	}
	apps, err := admin.Apps(ctx, queryapi.PageRequest{}, 0)
	if err != nil || len(apps.Items) != 2 {
		t.Fatalf("apps as the admin: %+v, %v; want web and api", apps, err)
	}

	for _, viewer := range []*events.Signer{webViewer, globViewer} {
		q := queryapi.NewClient(mustConnectAs(t, addrs, viewer).nc, queryapi.SignedBy(viewer))
		// Its own app: answered.
		if revs, err := q.Revisions(ctx, "web", queryapi.PageRequest{}, 0); err != nil || len(revs.Items) != 1 {
			t.Errorf("%s: web's revisions: %+v, %v", viewer.Key, revs, err)
		}
		if _, err := q.Revision(ctx, "web", "v1", 0); err != nil {
			t.Errorf("%s: web's v1: %v", viewer.Key, err)
		}
		// The apps list holds its app alone, page after page.
		for _, limit := range []int{0, 1} {
			var names []string
			for page := (queryapi.PageRequest{Limit: limit}); ; {
				apps, err := q.Apps(ctx, page, 0)
				if err != nil {
					t.Fatalf("%s: apps: %v", viewer.Key, err)
				}
				for _, app := range apps.Items {
					names = append(names, app.Name)
				}
				if apps.NextPageToken == "" {
					break
				}
				page.PageToken = apps.NextPageToken
			}
			if strings.Join(names, " ") != "web" {
				t.Errorf("%s: apps list (limit %d): %v; want web alone", viewer.Key, limit, names)
			}
		}
		// Another app: forbidden, whatever is asked.
		_, err := q.Revisions(ctx, "api", queryapi.PageRequest{}, 0)
		wantQueryError(t, viewer.Key+": api's revisions", err, queryapi.CodeForbidden)
		_, err = q.Revision(ctx, "api", "v1", 0)
		wantQueryError(t, viewer.Key+": api's v1", err, queryapi.CodeForbidden)
		_, err = q.Runners(ctx, "api", queryapi.RunnerFilter{All: true}, queryapi.PageRequest{}, 0)
		wantQueryError(t, viewer.Key+": api's runners", err, queryapi.CodeForbidden)
		_, err = q.Rollout(ctx, "api", "0193f1c2-0000-7000-8000-000000000001", 0)
		wantQueryError(t, viewer.Key+": an api rollout", err, queryapi.CodeForbidden)
		_, err = q.RunnerLogs(ctx, "api", apiRunners.Items[0].RunnerID, queryapi.LogRequest{Tail: 10}, 0)
		wantQueryError(t, viewer.Key+": an api runner's logs", err, queryapi.CodeForbidden)
		// A query about an app that does not exist tells nothing either.
		_, err = q.Revisions(ctx, "secret-project", queryapi.PageRequest{}, 0)
		wantQueryError(t, viewer.Key+": another app that does not exist", err, queryapi.CodeForbidden)
		if v, err := q.ServerVersion(ctx); err != nil || v.Version == "" {
			t.Errorf("%s: version: %+v, %v", viewer.Key, v, err)
		}
	}

	// Unsigned, or signed by no live token: refused, but for the version.
	unsigned := queryapi.NewClient(a.nc)
	_, err = unsigned.Apps(ctx, queryapi.PageRequest{}, 0)
	wantQueryError(t, "unsigned apps", err, queryapi.CodeUnauthenticated)
	_, err = unsigned.Revisions(ctx, "web", queryapi.PageRequest{}, 0)
	wantQueryError(t, "unsigned revisions", err, queryapi.CodeUnauthenticated)
	if _, err := unsigned.ServerVersion(ctx); err != nil {
		t.Errorf("unsigned version: %v", err)
	}
	forged := queryapi.NewClient(a.nc, queryapi.SignedBy(events.NewSigner("admin", "rvl_admin_"+strings.Repeat("0", 64))))
	_, err = forged.Runners(ctx, "api", queryapi.RunnerFilter{}, queryapi.PageRequest{}, 0)
	wantQueryError(t, "a query signed with a wrong key", err, queryapi.CodeUnauthenticated)

	// The CLI signs its queries: the web viewer lists web, and is refused
	// api's revisions with the reason.
	if out := revlineOK(t, addrs, webViewerFile, "apps", "list"); !strings.Contains(out, "web") || strings.Contains(out, "api") {
		t.Errorf("apps list as the web viewer:\n%s", out)
	}
	if out := revlineOK(t, addrs, webViewerFile, "apps", "list-rev", "web"); !strings.Contains(out, "deployed") {
		t.Errorf("list-rev web as the web viewer:\n%s", out)
	}
	code, stdout, stderr := revline(t, addrs.NATSURL, "apps", "list-rev", "api", "--token-file", webViewerFile)
	if code == 0 || !strings.Contains(stderr, "forbidden") || strings.Contains(stdout, "deployed") {
		t.Errorf("list-rev api as the web viewer: exit %d, %s %s; want forbidden", code, stdout, stderr)
	}
}

// revlineOK runs the CLI as the token in tokenFile, failing the test on
// a non-zero exit.
func revlineOK(t *testing.T, addrs server.Addresses, tokenFile string, args ...string) string {
	t.Helper()
	code, stdout, stderr := revline(t, addrs.NATSURL, append(args, "--token-file", tokenFile)...)
	if code != 0 {
		t.Fatalf("revline %v: exit %d, %s %s", args, code, stdout, stderr)
	}
	return stdout
}
