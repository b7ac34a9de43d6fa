package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/revline/revline/events"
	"github.com/revline/revline/projections/audit"
)

// bin runs the built revline binary against s as actor, the way a user
// does: the NATS URL from REVLINE_NATS_URL, and the token named actor in
// REVLINE_TOKEN (made by the bootstrap admin the first time), which it
// connects and signs as, so that the log records token:ACTOR. Actor "x" is
// the bootstrap admin.
func (s *serveProcess) bin(t *testing.T, actor string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := s.binCommand(ctx, s.tokenOf(t, actor), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("revline %s: %v", strings.Join(args, " "), err)
	}
	return result{code, stdout.String(), stderr.String()}
}

// binCommand is the binary run with token (its value; "" for the
// bootstrap admin's, in the data directory).
func (s *serveProcess) binCommand(ctx context.Context, token string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, revlineBin, args...)
	cmd.Env = append(os.Environ(), "REVLINE_NATS_URL="+s.natsURL, "REVLINE_TOKEN="+token,
		"REVLINE_TOKEN_FILE="+filepath.Join(s.dataDir, "auth", "admin.token"))
	return cmd
}

// tokenOf returns the value of the deployer token named actor, made the
// first time; "" for actor "x".
func (s *serveProcess) tokenOf(t *testing.T, actor string) string {
	t.Helper()
	if actor == "x" {
		return ""
	}
	if value, ok := s.tokens[actor]; ok {
		return value
	}
	var made struct{ Value string }
	if err := json.Unmarshal([]byte(s.binOK(t, "x", "tokens", "create", actor, "--role", "deployer", "-o", "json")), &made); err != nil || made.Value == "" {
		t.Fatalf("token %s: %v", actor, err)
	}
	if s.tokens == nil {
		s.tokens = map[string]string{}
	}
	s.tokens[actor] = made.Value
	return made.Value
}

func (s *serveProcess) binOK(t *testing.T, actor string, args ...string) string {
	t.Helper()
	r := s.bin(t, actor, args...)
	if r.code != 0 {
		t.Fatalf("revline %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// records reads `revline audit -o jsonl` output back.
func records(t *testing.T, jsonl string) []audit.Record {
	t.Helper()
	var out []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(jsonl), "\n") {
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("jsonl line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// The audit, the history and revision numbers through the built binary,
// as tokens: who did what, each filter, the
// export, and --follow until interrupted.
func TestAuditThroughTheBinary(t *testing.T) {
	dataDir := t.TempDir()
	s := startServe(t, dataDir, freePort(t), freePort(t))
	const app = "audited"
	deployed := func(actor, message string) {
		t.Helper()
		out := s.binOK(t, actor, "deploy", app, "--command", runnerBin, "--message", message)
		if !strings.Contains(out, "is deployed and current") {
			t.Fatalf("deploy: %s", out)
		}
	}
	deployed("alice", "first")
	deployed("bob", "second")
	s.binOK(t, "carol", "apps", "scale", app, "--min-concurrency", "2")
	if out := s.binOK(t, "alice", "apps", "set-rev", app, "v1", "--message", "v2 is slow"); !strings.Contains(out, "now serves revision v1 (") {
		t.Fatalf("set-rev v1: %s", out)
	}
	s.binOK(t, "alice", "apps", "delete-rev", app, "2")
	deployed("bob", "third")

	// Numbers: v2 was deleted and is not given again.
	var revs []struct {
		Number     int    `json:"number"`
		RevisionID string `json:"revision_id"`
	}
	if err := json.Unmarshal([]byte(s.binOK(t, "x", "apps", "list-rev", app, "-o", "json")), &revs); err != nil {
		t.Fatal(err)
	}
	if len(revs) != 2 || revs[0].Number != 3 || revs[1].Number != 1 {
		t.Fatalf("list-rev after deleting v2 and deploying: %+v; want v3 and v1", revs)
	}
	if !strings.HasPrefix(strings.Fields(s.binOK(t, "x", "apps", "list-rev", app))[0], "VERSION") {
		t.Fatal("list-rev's table does not start with the version")
	}
	for _, tt := range []struct{ ref, says string }{
		{"v9", `has no revision v9`},
		{"abc", "at least 8 characters"},
		{"v2", "was deleted"},
	} {
		r := s.bin(t, "x", "apps", "set-rev", app, tt.ref)
		if r.code != 1 || !strings.Contains(r.stderr, tt.says) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("set-rev %s: exit %d, stderr %q; want 1 and one line saying %q", tt.ref, r.code, r.stderr, tt.says)
		}
	}
	// A prefix of 8 characters of a new id names it (v3 is current: a no-op).
	if out := s.binOK(t, "alice", "apps", "set-rev", app, revs[0].RevisionID[:8]); !strings.Contains(out, "v3") {
		t.Fatalf("set-rev by 8-character prefix: %s", out)
	}

	all := records(t, s.binOK(t, "x", "audit", app, "-o", "jsonl"))
	if len(all) < 12 {
		t.Fatalf("audit -o jsonl: %d records", len(all))
	}
	for i, r := range all {
		if r.App != app || r.ID == "" || r.Type == "" || r.SchemaVersion != 1 || r.Payload == nil || r.Time.IsZero() || r.CausationID == "" ||
			i > 0 && r.Sequence <= all[i-1].Sequence {
			t.Fatalf("record %d is incomplete or out of order: %+v", i, r)
		}
	}

	// --limit 2 is the last two events. Runners the last deploy replaced
	// may still be reporting their end: compare with a full read that
	// ends where the limited one does.
	for attempt := 0; ; attempt++ {
		last := records(t, s.binOK(t, "x", "audit", app, "--limit", "2", "-o", "jsonl"))
		again := records(t, s.binOK(t, "x", "audit", app, "-o", "jsonl"))
		if len(last) == 2 && len(again) >= 2 && last[1].Sequence == again[len(again)-1].Sequence {
			if last[0].Sequence != again[len(again)-2].Sequence {
				t.Fatalf("--limit 2: %+v; want the last two of %d events", last, len(again))
			}
			break
		}
		if attempt == 20 {
			t.Fatalf("--limit 2: %+v; the log kept moving (%d events)", last, len(again))
		}
	}

	table := s.binOK(t, "x", "audit", app, "--type", "app.*")
	for _, want := range []string{
		"scaled min_concurrency 0→2",
		`rolled back to v1 (runtime params kept from v2): "v2 is slow"`,
		"deployed v3 (runtime params kept from v1)",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("audit --type 'app.*' lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "revision.created") {
		t.Errorf("--type app.* shows revision events:\n%s", table)
	}

	// Without APP, the whole log (an ordered consumer on every app's
	// subjects): a token of every app may read it.
	everyApp := records(t, s.binOK(t, "x", "audit", "--type", "app.scaled", "-o", "jsonl"))
	if len(everyApp) != 1 || everyApp[0].App != app {
		t.Fatalf("audit of every app's scales: %+v", everyApp)
	}
	byCarol := records(t, s.binOK(t, "x", "audit", app, "--actor", "token:carol", "-o", "jsonl"))
	if len(byCarol) != 1 || byCarol[0].Type != "app.scaled" {
		t.Fatalf("--actor carol: %+v", byCarol)
	}
	aboutV2 := records(t, s.binOK(t, "x", "audit", app, "--revision", "v2", "--type", "revision.*", "-o", "jsonl"))
	var types []string
	for _, r := range aboutV2 {
		types = append(types, r.Type)
	}
	if !slices.Equal(types, []string{"revision.created", "revision.deployed", "revision.deleted"}) {
		t.Fatalf("--revision v2: %v", types)
	}
	if future := s.bin(t, "x", "audit", app, "--since", "1h", "--until", "2h ago"); future.code != 2 {
		t.Fatalf("an empty window: exit %d, %s", future.code, future.stderr)
	}
	// Everything happened in the last 10 minutes: what was there before,
	// and whatever the runners reported since.
	recent := records(t, s.binOK(t, "x", "audit", app, "--since", "10m ago", "-o", "jsonl"))
	if len(recent) < len(all) || recent[0].Sequence != all[0].Sequence || recent[len(all)-1].Sequence != all[len(all)-1].Sequence {
		t.Fatalf("--since 10m ago: %d records, want all %d from sequence %d", len(recent), len(all), all[0].Sequence)
	}

	var history []audit.Entry
	if err := json.Unmarshal([]byte(s.binOK(t, "x", "apps", "history", app, "-o", "json")), &history); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range history {
		lines = append(lines, e.Current+" "+e.By+" "+e.Summary)
	}
	want := []string{
		`v3 token:bob deployed v3 (runtime params kept from v1): "third"`,
		`v1 token:alice deleted v2`,
		`v1 token:alice rolled back to v1 (runtime params kept from v2): "v2 is slow"`,
		`v2 token:carol scaled min_concurrency 0→2`,
		`v2 token:bob deployed v2 (runtime params kept from v1): "second"`,
		`v1 token:alice deployed v1 (first deploy: runtime params from the deploy): "first"`,
	}
	if !slices.Equal(lines, want) {
		t.Fatalf("apps history:\n got %q\nwant %q", lines, want)
	}

	// Provenance: v3 is current; its runtime parameters were inherited on
	// its deploy, min_concurrency chosen by carol's scale.
	var config audit.Config
	if err := json.Unmarshal([]byte(s.binOK(t, "x", "apps", "show", app, "-o", "json")), &config); err != nil {
		t.Fatal(err)
	}
	shown := map[string]audit.Setting{}
	for _, p := range config.Params {
		shown[p.Param] = p
	}
	minimum := shown["min_concurrency"]
	if config.Number != 3 || minimum.Value != "2" || minimum.Source.How != "inherited from v1 on deploy of v3" || minimum.Source.By != "token:bob" ||
		minimum.Origin == nil || minimum.Origin.How != "scale" || minimum.Origin.By != "token:carol" {
		t.Fatalf("apps show: v%d, min_concurrency %+v (origin %+v)", config.Number, minimum, minimum.Origin)
	}
	if mt := shown["machine_type"]; mt.Source.How != "deploy of v3" || mt.Source.Message != "third" {
		t.Fatalf("apps show: machine_type %+v", mt)
	}
	if table := s.binOK(t, "x", "apps", "show", app); !strings.Contains(table, "inherited from v1 on deploy of v3") {
		t.Fatalf("apps show table:\n%s", table)
	}
	var blame []audit.Setting
	if err := json.Unmarshal([]byte(s.binOK(t, "x", "apps", "blame", app, "min_concurrency", "-o", "json")), &blame); err != nil {
		t.Fatal(err)
	}
	var hows []string
	for _, b := range blame {
		hows = append(hows, b.Value+" "+b.Source.How)
	}
	if want := []string{"0 deploy of v1", "0 inherited from v1 on deploy of v2", "2 scale", "2 inherited from v2 on rollback to v1", "2 inherited from v1 on deploy of v3"}; !slices.Equal(hows, want) {
		t.Fatalf("apps blame min_concurrency:\n got %q\nwant %q", hows, want)
	}
	if r := s.bin(t, "x", "apps", "blame", app, "min-concurrency"); r.code != 1 || !strings.Contains(r.stderr, "min_concurrency") {
		t.Fatalf("blame of an unknown parameter: exit %d, %s", r.code, r.stderr)
	}

	// Time travel: list-rev as it was when v2 had just been deployed (the
	// sequence of its current_revision_set), folded from the log.
	var (
		v2Current uint64
		v2ID      string
	)
	for _, r := range all {
		if set, ok := r.Payload.(events.CurrentRevisionSet); ok && set.Reason == "deploy" && v2Current == 0 && set.From != "" {
			v2Current, v2ID = r.Sequence, set.To
		}
	}
	var then []struct {
		Number  int    `json:"number"`
		Status  string `json:"status"`
		Current bool   `json:"current"`
	}
	if err := json.Unmarshal([]byte(s.binOK(t, "x", "apps", "list-rev", app, "--at-seq", fmt.Sprint(v2Current), "-o", "json")), &then); err != nil {
		t.Fatal(err)
	}
	if len(then) != 2 || then[0].Number != 2 || !then[0].Current || then[1].Number != 1 || then[1].Current {
		t.Fatalf("list-rev --at-seq %d: %+v; want v2 current, then v1", v2Current, then)
	}
	var runnersThen []runnerRow
	if err := json.Unmarshal([]byte(s.binOK(t, "x", "apps", "runners", app, "--at-seq", fmt.Sprint(v2Current), "-o", "json")), &runnersThen); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(runnersThen, func(r runnerRow) bool { return r.RevisionID == v2ID && r.State == "idle" && r.PID > 0 }) {
		t.Fatalf("runners --at-seq %d: %+v; want v2's runner up", v2Current, runnersThen)
	}
	if r := s.bin(t, "x", "apps", "list-rev", app, "--at", "1h ago"); r.code != 1 || !strings.Contains(r.stderr, "no history up to") {
		t.Fatalf("list-rev before the app existed: exit %d, %s", r.code, r.stderr)
	}
	if table := s.binOK(t, "x", "apps", "list-rev", app, "--at", time.Now().Format(time.RFC3339Nano)); !strings.Contains(table, "as of event") {
		t.Fatalf("list-rev --at now:\n%s", table)
	}

	// Diff: v1 (last ran with min_concurrency 2, after the scale) and v3.
	var diff struct {
		Changes []struct{ Field, A, B string } `json:"changes"`
	}
	if err := json.Unmarshal([]byte(s.binOK(t, "x", "apps", "diff", app, "v1", "v3", "-o", "json")), &diff); err != nil {
		t.Fatal(err)
	}
	if len(diff.Changes) != 1 || diff.Changes[0].Field != "message" || diff.Changes[0].A != "first" || diff.Changes[0].B != "third" {
		t.Fatalf("apps diff v1 v3: %+v", diff.Changes)
	}
	// The current revisions when v2 had just been deployed, and now (v3).
	var v2At time.Time
	for _, r := range all {
		if r.Sequence == v2Current {
			v2At = r.Time
		}
	}
	var overTime struct {
		A, B struct {
			Number int `json:"number"`
		}
	}
	if err := json.Unmarshal([]byte(s.binOK(t, "x", "apps", "diff", app, "--at", v2At.Format(time.RFC3339Nano), "--at", "now", "-o", "json")), &overTime); err != nil {
		t.Fatal(err)
	}
	if overTime.A.Number != 2 || overTime.B.Number != 3 {
		t.Fatalf("apps diff --at (v2 deployed) --at now: %+v", overTime)
	}
	if r := s.bin(t, "x", "apps", "diff", app, "v1", "v7"); r.code != 1 || !strings.Contains(r.stderr, "no revision v7") {
		t.Fatalf("apps diff with an unknown revision: exit %d, %s", r.code, r.stderr)
	}

	// --follow prints the log so far, then what happens, until Ctrl-C.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	follow := s.binCommand(ctx, "", "audit", app, "--type", "app.scaled", "--follow", "-o", "jsonl")
	out, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	follow.Stderr = &stderr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	lineReader := bufio.NewScanner(out)
	next := func() audit.Record {
		t.Helper()
		if !lineReader.Scan() {
			t.Fatalf("audit --follow ended: %v %s", lineReader.Err(), stderr.String())
		}
		return records(t, lineReader.Text())[0]
	}
	if first := next(); first.Actor != "token:carol" {
		t.Fatalf("first followed record: %+v", first)
	}
	s.binOK(t, "dave", "apps", "scale", app, "--max-concurrency", "5")
	if live := next(); live.Actor != "token:dave" || live.Type != "app.scaled" {
		t.Fatalf("live record: %+v", live)
	}
	if err := follow.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := follow.Wait(); err != nil {
		t.Fatalf("audit --follow after Ctrl-C: %v (want exit 0): %s", err, stderr.String())
	}
}
