package server_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/queryapi"
)

// `revline replay`, sent as the admin token to the embedded server,
// rebuilds serve's read model into generation 2, equal to the first;
// --to-seq compares the past with it and switches nothing.
func TestReplayThroughTheCLI(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{})
	nkey := []string{"--token-file", addrs.AdminTokenFile}
	for range 2 {
		if code, stdout, stderr := revline(t, addrs.NATSURL, append([]string{"deploy", "web", "--command", runnerBin}, nkey...)...); code != 0 {
			t.Fatalf("deploy: exit %d, %s %s", code, stdout, stderr)
		}
	}

	code, stdout, stderr := revline(t, addrs.NATSURL, append([]string{"replay", "-o", "json"}, nkey...)...)
	var report projections.ReplayReport
	if code != 0 || json.Unmarshal([]byte(stdout), &report) != nil {
		t.Fatalf("replay: exit %d, stdout %s, stderr %s", code, stdout, stderr)
	}
	if !report.Switched || report.Generation != 2 || report.EventsRead < 6 || !report.Differences.None() {
		t.Errorf("replay: %+v; want generation 2 switched in, with no difference", report)
	}
	code, stdout, stderr = revline(t, addrs.NATSURL, append([]string{"apps", "list-rev", "web", "-o", "json"}, nkey...)...)
	if code != 0 || strings.Count(stdout, `"revision_id"`) != 2 {
		t.Errorf("list-rev after the replay: exit %d, %s %s", code, stdout, stderr)
	}

	code, stdout, stderr = revline(t, addrs.NATSURL, append([]string{"replay", "--to-seq", "1"}, nkey...)...)
	if code != 0 || !strings.Contains(stdout, "as of sequence 1") || !strings.Contains(stdout, "not switched: generation 2") || !strings.Contains(stdout, "revisions") {
		t.Errorf("replay --to-seq 1: exit %d, stdout:\n%s\nstderr %s", code, stdout, stderr)
	}
	code, _, stderr = revline(t, addrs.NATSURL, append([]string{"replay", "--to-seq", "1000000"}, nkey...)...)
	if code != 1 || !strings.Contains(stderr, "past the end of the event log") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("replay past the log's end: exit %d, stderr %q", code, stderr)
	}
}

// A replay request needs an admin token's signature, as token requests do:
// an unsigned one, or a deployer's, is refused.
func TestReplayNeedsAnAdmin(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{})
	nkey := []string{"--token-file", addrs.AdminTokenFile}
	code, stdout, stderr := revline(t, addrs.NATSURL, append([]string{"tokens", "create", "dep", "--role", "deployer", "-o", "json"}, nkey...)...)
	var created struct {
		Value string `json:"value"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &created) != nil {
		t.Fatalf("tokens create: exit %d, %s %s", code, stdout, stderr)
	}
	tokenFile := filepath.Join(t.TempDir(), "dep.token")
	if err := os.WriteFile(tokenFile, []byte(created.Value), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = revline(t, addrs.NATSURL, "replay", "--token-file", tokenFile)
	// Not even published: the bus refuses a deployer's token the subject.
	if code != 1 || !strings.Contains(stderr, "the bus refused token dep") {
		t.Errorf("replay with a deployer's token: exit %d, stderr %q; want refused", code, stderr)
	}

	nc, err := nats.Connect(addrs.NATSURL, tokenOptions(t, addrs.AdminTokenFile)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msg, err := nc.Request("revline.replay", nil, 10*time.Second)
	if err != nil || !strings.Contains(string(msg.Data), `"code":"unauthenticated"`) {
		t.Errorf("an unsigned replay request: %v %s; want unauthenticated", err, msgData(msg))
	}
}

func msgData(msg *nats.Msg) string {
	if msg == nil {
		return ""
	}
	return string(msg.Data)
}

// With two serve replicas, `revline replay --all` reaches both: each
// rebuilds its own model and answers with its report, under its name.
func TestReplayAllReachesEveryReplica(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addrs := servertest.Serve(t, server.Config{DataDir: dir})
	asServer, err := nats.NkeyOptionFromSeed(filepath.Join(dir, "auth", "server.nk"))
	if err != nil {
		t.Fatal(err)
	}
	replica := servertest.Serve(t, server.Config{NATSURL: addrs.NATSURL, NATSOptions: []nats.Option{asServer}, NoRunners: true})
	cli := asClient(t, addrs)
	cli("secrets", "set", "web", "A=1")
	cli("secrets", "set", "web", "B=2")

	var answers []queryapi.ReplicaReplay
	if err := json.Unmarshal([]byte(cli("replay", "--all", "-o", "json")), &answers); err != nil {
		t.Fatal(err)
	}
	if len(answers) != 2 {
		t.Fatalf("replay --all: %+v; want the answers of 2 replicas", answers)
	}
	servers := []string{}
	for _, a := range answers {
		if a.Report == nil || !a.Report.Switched || a.Report.Generation != 2 || a.Report.EventsRead < 2 {
			t.Errorf("%s: %+v, %s; want generation 2 switched in", a.Server, a.Report, a.Error)
		}
		servers = append(servers, a.Server)
	}
	if !strings.Contains(strings.Join(servers, " "), addrs.HTTPURL) || !strings.Contains(strings.Join(servers, " "), replica.HTTPURL) {
		t.Errorf("replay --all answered as %v; want the replicas at %s and %s", servers, addrs.HTTPURL, replica.HTTPURL)
	}
	// Without --all, one replica answers.
	if out := cli("replay"); strings.Count(out, "Replayed") != 1 {
		t.Errorf("replay:\n%s", out)
	}
}
