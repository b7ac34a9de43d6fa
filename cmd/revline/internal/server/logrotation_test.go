package server_test

import (
	"context"
	"encoding/json"
	"fmt"
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

// The outsider's runner that writes more than its log may hold: its log
// stays within about twice the limit on disk, `runners logs` shows its
// newest lines, a follower goes on across the log's rotations (without
// cut lines: each burst of output is smaller than the limit, and the
// follower has read the last when the next comes, see docs/bus.md on
// followers more than a file behind), and `apps delete` removes the log.
func TestARunnerThatWritesWithoutEndFillsNoDisk(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const (
		limit  = 64 << 10
		bursts = 8
		burst  = 4000 // lines of at most 11 bytes: less than the limit
	)
	dataDir := t.TempDir()
	addrs := servertest.Serve(t, server.Config{DataDir: dataDir, RunnerLogMaxBytes: limit})
	cli := asClient(t, addrs)
	// The writer, as the runner's user, writes burst k once the file gok
	// exists.
	gates := t.TempDir()
	for _, d := range []string{filepath.Dir(gates), gates} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writer := fmt.Sprintf(`i=0; for k in $(seq 1 %d); do while [ ! -e '%s'/go$k ]; do sleep 0.02; done; n=0; while [ $n -lt %d ]; do i=$((i+1)); n=$((n+1)); echo "line $i"; done; done`, bursts, gates, burst)
	cli("deploy", "chatty", "--command", "("+writer+") & exec "+runnerBin)
	var runners []struct {
		RunnerID string `json:"runner_id"`
	}
	if err := json.Unmarshal([]byte(cli("apps", "runners", "chatty", "-o", "json")), &runners); err != nil || len(runners) != 1 {
		t.Fatalf("runners: %v, %v", runners, err)
	}
	runner := runners[0].RunnerID
	logDir := filepath.Join(dataDir, "runners", "logs", "chatty")

	followCtx, stopFollow := context.WithCancel(ctx)
	var followed testsupport.SyncBuffer
	followDone := make(chan int, 1)
	go func() {
		followDone <- cliMain(followCtx, addrs, &followed, "runners", "logs", "chatty", runner, "--tail", "all", "-f", "-o", "json")
	}()
	var lines []queryapi.LogLine
	for k := 1; k <= bursts; k++ {
		if err := os.WriteFile(filepath.Join(gates, fmt.Sprintf("go%d", k)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("line %d", k*burst)
		testsupport.Eventually(ctx, t, "the follower reads "+want, func() bool {
			lines = followedLines(t, followed.String())
			return len(lines) > 0 && lines[len(lines)-1].Text == want
		})
		var total int64
		entries, err := os.ReadDir(logDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if info, err := e.Info(); err == nil {
				total += info.Size()
			}
		}
		if total > 2*limit+100 { // each file ends with the line under way
			t.Fatalf("after %d bursts the runner's logs take %d bytes on disk, more than twice the limit %d: %v", k, total, limit, entries)
		}
	}
	stopFollow()
	if code := <-followDone; code != 0 {
		t.Fatalf("runners logs -f ended with exit %d", code)
	}

	restarts, seen := 0, 0
	for i, line := range lines {
		if i > 0 && line.Offset < lines[i-1].Offset {
			restarts++
		}
		if strings.HasPrefix(line.Text, "listening on ") {
			continue // the runner's own
		}
		n, err := strconv.Atoi(strings.TrimPrefix(line.Text, "line "))
		if err != nil || n <= seen {
			t.Fatalf("followed line %d is %q after line %d: cut or out of order", i, line.Text, seen)
		}
		seen = n
	}
	if restarts < 3 {
		t.Fatalf("the follower read %d rotations of the log, want 3 or more", restarts)
	}
	if tail := cli("runners", "logs", "chatty", runner, "--tail", "2"); tail != fmt.Sprintf("line %d\nline %d\n", bursts*burst-1, bursts*burst) {
		t.Fatalf("runners logs --tail 2: %q, want the last two lines", tail)
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
