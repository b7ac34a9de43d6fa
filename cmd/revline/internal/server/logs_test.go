package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/projections/queryapi"
)

// TestRunnerLogsThroughServe deploys the echo runner, whose command
// prints a line with control characters before it starts, and reads its
// log through the CLI and the HTTP API of the server that runs it and of a
// replica without runners.
func TestRunnerLogsThroughServe(t *testing.T) {
	t.Parallel()
	// An external NATS server (as on a cluster), which the CLI reaches
	// without NATS credentials; its queries are signed by its token all
	// the same, or refused.
	addrs := servertest.Serve(t, server.Config{NATSURL: embeddedtest.Start(t).ClientURL()})
	command := `printf 'hello \033[31mred\007\n'; exec ` + runnerBin
	code, stdout, stderr := revline(t, addrs.NATSURL, "deploy", "web", "--command", command, "-o", "json", "--token-file", addrs.AdminTokenFile)
	var res map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || res["status"] != "deployed" {
		t.Fatalf("deploy: exit %d, stdout %s, stderr %s", code, stdout, stderr)
	}
	code, stdout, stderr = revline(t, addrs.NATSURL, "apps", "runners", "web", "-o", "json", "--token-file", addrs.AdminTokenFile)
	var runners []map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &runners) != nil || len(runners) != 1 {
		t.Fatalf("runners: exit %d, stdout %s, stderr %s", code, stdout, stderr)
	}
	runner := runners[0]["runner_id"].(string)

	// The runner prints "listening on" once it listens, just before the
	// deploy sees it ready: wait for the line, briefly.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, stdout, stderr = revline(t, addrs.NATSURL, "runners", "logs", "web", runner, "--token-file", addrs.AdminTokenFile)
		if code == 0 && strings.Contains(stdout, "listening on 127.0.0.1:") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != 0 || !strings.HasPrefix(stdout, `hello \x1b[31mred\x07`+"\n") || !strings.Contains(stdout, "listening on 127.0.0.1:") || stderr != "" {
		t.Fatalf("runners logs: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = revline(t, addrs.NATSURL, "runners", "logs", "web", runner, "--tail", "all", "-o", "json", "--token-file", addrs.AdminTokenFile)
	first, _, _ := strings.Cut(stdout, "\n")
	var line queryapi.LogLine
	if code != 0 || json.Unmarshal([]byte(first), &line) != nil || line != (queryapi.LogLine{Offset: 0, Text: "hello \x1b[31mred\x07"}) {
		t.Fatalf("runners logs -o json: exit %d, first line %s", code, first)
	}

	// Unknown runner, another app's: exit 1, one line.
	for _, args := range [][]string{{"web", uuid.NewString()}, {"nope", runner}} {
		code, stdout, stderr = revline(t, addrs.NATSURL, append([]string{"runners", "logs", "--token-file", addrs.AdminTokenFile}, args...)...)
		if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "not found") {
			t.Fatalf("runners logs %v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}

	// The HTTP API of the server, and of a replica without runners (which
	// asks the server over NATS), answer the same.
	replica := servertest.Serve(t, server.Config{NATSURL: addrs.NATSURL, NoRunners: true})
	for _, httpURL := range []string{addrs.HTTPURL, replica.HTTPURL} {
		resp := get(t, fmt.Sprintf("%s/v1/apps/web/runners/%s/logs?tail=100", httpURL, runner), addrs.AdminTokenFile)
		var page queryapi.LogPage
		err := json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(page.Lines) < 2 || page.Lines[0].Text != "hello \x1b[31mred\x07" ||
			!strings.HasPrefix(page.Lines[1].Text, "listening on 127.0.0.1:") {
			t.Fatalf("logs over HTTP from %s: status %d, %+v, %v", httpURL, resp.StatusCode, page, err)
		}
	}
}
