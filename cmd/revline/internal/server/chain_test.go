package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections/audit"
)

// `revline audit verify`, with the client's identity, finds serve's chain
// intact, then reports the event someone with the server's rights slipped
// in, at its sequence, and exits 1.
func TestAuditVerifyFindsTheForgedEvent(t *testing.T) {
	t.Parallel()
	addrs, cli := serveWithSecrets(t, "web A=1", "web B=2", "api A=1")

	var reports []audit.ChainReport
	if err := json.Unmarshal([]byte(cli("audit", "verify", "-o", "json")), &reports); err != nil {
		t.Fatal(err)
	}
	if len(reports) != 2 || !reports[0].OK || !reports[1].OK || reports[0].App != "api" || reports[1].Events != 2 {
		t.Fatalf("reports of an intact log: %+v", reports)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	forged, err := events.Chain("", []events.Envelope{events.NewEnvelope("web", events.SecretSet{Name: "A", Version: 9}, events.Metadata{Actor: "alice"}, time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := events.EventMsg(forged[0])
	if err != nil {
		t.Fatal(err)
	}
	ack, err := serverConn(t, addrs).PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	cli("secrets", "set", "web", "C=3") // chains on from the forged event

	code, stdout, stderr := revline(t, addrs.NATSURL, "audit", "verify", "--token-file", addrs.AdminTokenFile)
	want := fmt.Sprintf("web: BROKEN at sequence %d (%s): expected %s, found %s", ack.Sequence, audit.ReasonPrevHash, reports[1].LastHash, events.ZeroHash)
	if code != 1 || !strings.Contains(stdout, want) || !strings.Contains(stdout, "api: OK, 1 event from") || !strings.Contains(stderr, "1 of 2 chains broken") {
		t.Fatalf("verify after the forgery: exit %d\nstdout %s\nstderr %s\nwant a line %q", code, stdout, stderr, want)
	}
}

// `revline audit verify --file` checks a real export offline: whole, it
// checks out; with a line changed or missing it names the line in one
// line of error and exits 1.
func TestAuditVerifyFileChecksAnExport(t *testing.T) {
	t.Parallel()
	addrs, cli := serveWithSecrets(t, "web A=1", "api A=1", "web B=2")
	lines := strings.Split(strings.TrimSuffix(cli("audit", "-o", "jsonl"), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("export: %q", lines)
	}
	dir := t.TempDir()
	write := func(name string, lines []string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	whole := write("whole.jsonl", lines)
	if out := cli("audit", "verify", "--file", whole); !strings.Contains(out, "OK, 3 events (sequences 1 to 3)") || !strings.Contains(out, "web: OK, 2 events") {
		t.Errorf("verify --file of the export:\n%s", out)
	}
	tampered := append([]string(nil), lines...)
	tampered[1] = strings.Replace(tampered[1], `"name":"A"`, `"name":"Z"`, 1)
	missing := []string{lines[0], lines[2]}
	for path, want := range map[string]string{
		write("tampered.jsonl", tampered): "line 2 (sequence 2): the payload differs from the stored payload",
		write("missing.jsonl", missing):   "line 2 (sequence 3): events 2 to 2 are missing",
	} {
		code, stdout, stderr := revline(t, addrs.NATSURL, "audit", "verify", "--file", path)
		if code != 1 || stdout != "" || !strings.Contains(stderr, want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("verify --file %s: exit %d\nstdout %s\nstderr %s\nwant one line with %q", filepath.Base(path), code, stdout, stderr, want)
		}
	}
	// One app's export has gaps where the other apps' events were.
	web := write("web.jsonl", strings.Split(strings.TrimSuffix(cli("audit", "web", "-o", "jsonl"), "\n"), "\n"))
	if out := cli("audit", "verify", "web", "--file", web); !strings.Contains(out, "OK, 2 events (sequences 1 to 3)") {
		t.Errorf("verify web --file of web's export:\n%s", out)
	}
	if code, _, stderr := revline(t, addrs.NATSURL, "audit", "verify", "api", "--file", web); code != 1 || !strings.Contains(stderr, `an event of "web" in an export of app "api"`) {
		t.Errorf("verify api --file of web's export: exit %d, %s", code, stderr)
	}
}

// serveWithSecrets starts serve and sets secrets ("APP NAME=VALUE"), one
// event each, with the CLI it returns.
func serveWithSecrets(t *testing.T, sets ...string) (server.Addresses, func(args ...string) string) {
	addrs := servertest.Serve(t, server.Config{})
	cli := asClient(t, addrs)
	for _, set := range sets {
		app, secret, _ := strings.Cut(set, " ")
		cli("secrets", "set", app, secret)
	}
	return addrs, cli
}
