package server_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/cli"
	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/projections/queryapi"
)

// The outsider's runner that writes without end: its log stays within
// twice the limit on disk, `runners logs` shows its newest lines, a
// follower goes on across the log's rotations, and `apps delete` removes
// the log.
func TestARunnerThatWritesWithoutEndFillsNoDisk(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const limit = 64 << 10
	dataDir := t.TempDir()
	addrs := servertest.Serve(t, server.Config{DataDir: dataDir, RunnerLogMaxBytes: limit})
	cli := asClient(t, addrs)
	// About 400 KB a second, numbered lines, while the runner serves.
	writer := `i=0; while :; do i=$((i+1)); echo "line $i"; [ $((i % 500)) = 0 ] && sleep 0.02; done`
	cli("deploy", "chatty", "--command", "("+writer+") & exec "+runnerBin)
	var runners []struct {
		RunnerID string `json:"runner_id"`
	}
	if err := json.Unmarshal([]byte(cli("apps", "runners", "chatty", "-o", "json")), &runners); err != nil || len(runners) != 1 {
		t.Fatalf("runners: %v, %v", runners, err)
	}
	runner := runners[0].RunnerID
	logDir := filepath.Join(dataDir, "runners", "logs", "chatty")

	// A follower, from the start of the log.
	followCtx, stopFollow := context.WithCancel(ctx)
	var followed testsupport.SyncBuffer
	followDone := make(chan int, 1)
	go func() {
		followDone <- cliMain(followCtx, addrs, &followed, "runners", "logs", "chatty", runner, "--tail", "all", "-f", "-o", "json")
	}()

	// The log is rotated again and again; the runner's files never take
	// more than twice the limit.
	rotations := 0
	var lastSize int64
	testsupport.Eventually(ctx, t, "five rotations of the log", func() bool {
		entries, err := os.ReadDir(logDir)
		if err != nil {
			return false
		}
		var total int64
		var current int64
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				continue // rotated meanwhile
			}
			total += info.Size()
			if e.Name() == runner+".log" {
				current = info.Size()
			}
		}
		if total > 2*limit+100 { // each file ends with the line under way
			t.Fatalf("the runner's logs take %d bytes on disk, more than twice the limit %d: %v", total, limit, entries)
		}
		if current < lastSize {
			rotations++
		}
		lastSize = current
		return rotations >= 5
	})

	// The follower saw the log start over and went on reading.
	lines := followedLines(t, followed.String())
	testsupport.Eventually(ctx, t, "the follower reads on after a rotation", func() bool {
		lines = followedLines(t, followed.String())
		restarts := 0
		for i := 1; i < len(lines); i++ {
			if lines[i].Offset < lines[i-1].Offset {
				restarts++
			}
		}
		return restarts >= 2
	})
	seen := 0
	for i, line := range lines {
		if strings.HasPrefix(line.Text, "listening on ") {
			continue // the runner's own
		}
		n := lineNumber(t, line.Text)
		if n <= seen {
			t.Fatalf("followed line %d is %q after line %d: out of order", i, line.Text, seen)
		}
		seen = n
	}

	// The tail is the newest output.
	tail := strings.Fields(cli("runners", "logs", "chatty", runner, "--tail", "3"))
	if len(tail) != 6 || lineNumber(t, tail[0]+" "+tail[1]) <= seen {
		t.Fatalf("runners logs --tail 3: %q, want lines after %d, which the follower saw", tail, seen)
	}

	stopFollow()
	if code := <-followDone; code != 0 {
		t.Fatalf("runners logs -f ended with exit %d", code)
	}
	cli("apps", "delete", "chatty")
	testsupport.Eventually(ctx, t, "the deleted app's logs removed", func() bool {
		_, err := os.Stat(logDir)
		return os.IsNotExist(err)
	})
}

// cliMain runs the CLI against addrs until ctx ends and returns its exit
// code; stdout goes to out.
func cliMain(ctx context.Context, addrs server.Addresses, out *testsupport.SyncBuffer, args ...string) int {
	var stderr testsupport.SyncBuffer
	return cli.Main(ctx, append(args, "--nats-url", addrs.NATSURL, "--token-file", addrs.AdminTokenFile), out, &stderr)
}

// followedLines decodes the JSON lines `runners logs -o json` printed,
// leaving out a last one being written.
func followedLines(t *testing.T, out string) []queryapi.LogLine {
	t.Helper()
	var lines []queryapi.LogLine
	for text := range strings.Lines(out) {
		if !strings.HasSuffix(text, "\n") {
			break
		}
		var line queryapi.LogLine
		if err := json.Unmarshal([]byte(text), &line); err != nil {
			t.Fatalf("runners logs -o json printed %q: %v", text, err)
		}
		if !line.Partial {
			lines = append(lines, line)
		}
	}
	return lines
}

// lineNumber returns N of "line N".
func lineNumber(t *testing.T, text string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimPrefix(text, "line "))
	if err != nil {
		t.Fatalf("log line %q is not the writer's", text)
	}
	return n
}
