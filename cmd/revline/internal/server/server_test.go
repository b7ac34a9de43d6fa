package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/cmd/revline/internal/cli"
	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/workers/runner/runnertest"
)

var runnerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "revline-server-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if runnerBin, err = runnertest.BuildEchoRunner(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func revline(t *testing.T, natsURL string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := cli.Main(ctx, append(args, "--nats-url", natsURL), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestServeOnACluster points serve at a 3-node NATS cluster: the streams
// are created with three replicas and a deploy goes through the whole
// path (command, decision, append, runner, outcome, projection).
// The cluster is configured as docs/bus.md tells an operator to: every
// node's only users are those of the authorization block `revline
// nats-config` prints, parsed from that text as nats-server parses its
// configuration file; serve connects with --nats-identities; the block is
// printed again with the tokens serve made, and the nodes reload it.
func TestServeOnACluster(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	conf, err := server.NATSAuthorization(dataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	parsed := parseAuthorization(t, conf)
	if len(parsed.Nkeys) != 2 {
		t.Fatalf("nats-config's block gives %d users, want 2 (the server, the query service):\n%s", len(parsed.Nkeys), conf)
	}
	nodeOptions := map[string]*natsserver.Options{}
	cluster := embeddedtest.StartClusterWith(t, 3, func(o *natsserver.Options) {
		o.Nkeys = parsed.Nkeys
		nodeOptions[o.ServerName] = o
	})
	url := embeddedtest.ClusterURL(cluster)
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Fatal("the cluster accepts an anonymous connection")
	}
	addrs := servertest.Serve(t, server.Config{DataDir: dataDir, NATSURL: url, NATSIdentities: true, Replicas: 3})

	// No token is a user yet: the operator prints the block again, with
	// the tokens, and reloads every node.
	if code, _, stderr := revline(t, addrs.NATSURL, "apps", "list", "--token-file", addrs.AdminTokenFile); code == 0 || !strings.Contains(stderr, "refused token admin") {
		t.Fatalf("list before the tokens are users: exit %d, %s; want the admin token refused", code, stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conf, err = server.NATSConfig(ctx, dataDir, url)
	if err != nil {
		t.Fatal(err)
	}
	parsed = parseAuthorization(t, conf)
	if len(parsed.Nkeys) != 4 {
		t.Fatalf("nats-config's block with the tokens gives %d users, want 4 (server, query, admin, serve's own):\n%s", len(parsed.Nkeys), conf)
	}
	for _, node := range cluster {
		reloaded := nodeOptions[node.Name()].Clone()
		reloaded.Nkeys = parsed.Nkeys
		if err := node.ReloadOptions(reloaded); err != nil {
			t.Fatalf("reload %s: %v", node.Name(), err)
		}
	}

	code, stdout, stderr := revline(t, addrs.NATSURL, "deploy", "web", "--command", runnerBin, "-o", "json", "--token-file", addrs.AdminTokenFile)
	var res map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || res["status"] != "deployed" {
		t.Fatalf("deploy on a cluster: exit %d, stdout %s, stderr %s", code, stdout, stderr)
	}

	// A token may not write the event log on the cluster either.
	violations := make(chan error, 8)
	asClient, err := nats.Connect(url, append(tokenOptions(t, addrs.AdminTokenFile), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))...)
	if err != nil {
		t.Fatal(err)
	}
	defer asClient.Close()
	if err := asClient.Publish(events.EventSubject("web", "revision.created"), []byte("forged")); err != nil {
		t.Fatal(err)
	}
	expectViolation(t, violations, "a token publishing an event on the cluster")

	nc, err := nats.Connect(url, nkeyOption(t, filepath.Join(dataDir, "auth", "server.nk")))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{events.EventStreamName, commandbus.CommandStreamName, commandbus.OutcomeStreamName, commandbus.DeadLetterStreamName} {
		stream, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if info := stream.CachedInfo(); info.Config.Replicas != 3 {
			t.Errorf("stream %s has %d replicas, want 3", name, info.Config.Replicas)
		}
	}

	// A second replica without runners shares the command processor's
	// consumer and builds its own read model: it answers reads too.
	replicaDir := t.TempDir()
	if err := os.CopyFS(filepath.Join(replicaDir, "auth"), os.DirFS(filepath.Join(dataDir, "auth"))); err != nil {
		t.Fatal(err)
	}
	replica := servertest.Serve(t, server.Config{DataDir: replicaDir, NATSURL: url, NATSIdentities: true, Replicas: 3, NoRunners: true})
	for _, httpURL := range []string{addrs.HTTPURL, replica.HTTPURL} {
		// The first replica made the admin token; both accept it.
		resp := get(t, fmt.Sprintf("%s/v1/apps/web/revisions?min_sequence=%d", httpURL, int64(res["sequence"].(float64))), addrs.AdminTokenFile)
		var revs []map[string]any
		err := json.NewDecoder(resp.Body).Decode(&revs)
		resp.Body.Close()
		if err != nil || len(revs) != 1 || revs[0]["current"] != true {
			t.Fatalf("revisions over HTTP from %s: %v %v", httpURL, revs, err)
		}
	}
	// Commands sent while both replicas consume are each processed once.
	code, stdout, stderr = revline(t, addrs.NATSURL, "deploy", "api", "--command", runnerBin, "-o", "json", "--token-file", addrs.AdminTokenFile)
	if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || res["status"] != "deployed" {
		t.Fatalf("deploy with two replicas: exit %d, stdout %s, stderr %s", code, stdout, stderr)
	}
}

// TestServeRefusesBadConfig checks the errors a misconfigured serve gives.
func TestServeRefusesBadConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]server.Config{
		"no data dir":  {},
		"bad replicas": {DataDir: t.TempDir(), Replicas: 7},
	} {
		if err := server.Run(context.Background(), cfg); err == nil {
			t.Errorf("%s: serve started", name)
		}
	}
}

// asClient returns a runner of CLI commands against addrs as the admin
// token serve made; a command that fails fails the test.
func asClient(t *testing.T, addrs server.Addresses) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		code, stdout, stderr := revline(t, addrs.NATSURL, append(args, "--token-file", addrs.AdminTokenFile)...)
		if code != 0 {
			t.Fatalf("revline %v: exit %d, %s %s", args, code, stdout, stderr)
		}
		return stdout
	}
}

// nkeyOption authenticates a connection with the nkey seed in file.
func nkeyOption(t *testing.T, file string) nats.Option {
	t.Helper()
	opt, err := nats.NkeyOptionFromSeed(file)
	if err != nil {
		t.Fatal(err)
	}
	return opt
}

// A second serve on a data directory in use refuses to start, and leaves
// the first one's runners alone (it would have taken them for orphans of
// a crash and killed them).
func TestServeRefusesADataDirectoryInUse(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	addrs := servertest.Serve(t, server.Config{DataDir: dataDir})
	cli := asClient(t, addrs)
	cli("deploy", "web", "--command", runnerBin)
	cli("apps", "scale", "web", "--min-concurrency", "1", "--wait")
	before := cli("apps", "runners", "web", "-o", "json")

	// Without the lock it would run until ctx ends, having swept the
	// first one's runners.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := server.Run(ctx, server.Config{DataDir: dataDir, NATSListen: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", GatewayAddr: "127.0.0.1:0"})
	if !errors.Is(err, server.ErrDataDirInUse) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second serve on %s: %v; want ErrDataDirInUse naming pid %d", dataDir, err, os.Getpid())
	}
	runners := runnerRows(t, cli, "web")
	if len(runners) != 1 || runners[0].State != "idle" || runners[0].Restarts != 0 || !strings.Contains(before, runners[0].RunnerID) {
		t.Fatalf("the first serve's runners after a second serve tried: %+v (before: %s)", runners, before)
	}
}

// parseAuthorization parses an authorization block as nats-server parses
// its configuration file.
func parseAuthorization(t *testing.T, conf string) *natsserver.Options {
	t.Helper()
	file := filepath.Join(t.TempDir(), "revline-auth.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	parsed, err := natsserver.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("nats-server cannot read what nats-config printed: %v\n%s", err, conf)
	}
	return parsed
}
