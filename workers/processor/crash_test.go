package processor_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/processor"
)

// The crash tests run a processor in a child process (this test binary,
// running TestCrashingProcessorChild), let it stop at a crash point while
// it handles one command, kill it with SIGKILL there, and check what a new
// processor makes of the redelivered command.
const (
	envChildNATS    = "REVLINE_TEST_CRASH_NATS"
	envCrashPoint   = "REVLINE_TEST_CRASH_POINT"
	envCrashCommand = "REVLINE_TEST_CRASH_COMMAND"
	crashedLine     = "REVLINE-CRASH-POINT-REACHED"
)

// Crash points.
const (
	// afterAppend: the command's events are stored, its outcome is not.
	afterAppend = "after-append"
	// afterOutcome: the outcome is recorded, the command not acknowledged.
	afterOutcome = "after-outcome"
)

// TestCrashingProcessorChild is the child process of the crash tests; run
// alone it does nothing.
func TestCrashingProcessorChild(t *testing.T) {
	url := os.Getenv(envChildNATS)
	if url == "" {
		t.Skip("the child process of TestKilledProcessorsCommandKeepsItsOutcome")
	}
	target := os.Getenv(envCrashCommand)
	js, store := connectChild(t, url)
	cfg := processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: url, JetStream: js, Store: store}
	switch os.Getenv(envCrashPoint) {
	case afterAppend:
		cfg.Store = crashingStore{JetStreamStore: store, causationID: target}
	case afterOutcome:
		cfg.OnOutcome = func(p processor.OutcomeParams) {
			if p.Outcome.CommandID == target {
				stopHere()
			}
		}
	}
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Fatal(p.Run(context.Background()))
}

// connectChild connects a child process to the parent's NATS server at
// url and opens the event store there.
func connectChild(t *testing.T, url string) (jetstream.JetStream, *events.JetStreamStore) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := events.OpenJetStreamStore(context.Background(), events.JetStreamStoreConfig{JetStream: js})
	if err != nil {
		t.Fatal(err)
	}
	return js, store
}

// accepting returns a function that has p process a command for app
// directly (not through the bus) and fails the test unless it is accepted.
func accepting(t *testing.T, ctx context.Context, p *processor.Processor, app string) func(events.Command) events.Outcome {
	return func(cmd events.Command) events.Outcome {
		t.Helper()
		o, _, err := p.Process(ctx, events.NewCommand(app, cmd, alice))
		if err != nil || o.Status != events.OutcomeAccepted {
			t.Fatalf("%s: %+v, %v", cmd.CommandType(), o, err)
		}
		return o
	}
}

// stopHere tells the parent that the crash point is reached and waits to
// be killed.
func stopHere() {
	fmt.Println(crashedLine)
	select {}
}

// crashingStore stops after appending the events of one command.
type crashingStore struct {
	*events.JetStreamStore
	causationID string
}

func (s crashingStore) Append(ctx context.Context, app string, expected uint64, evs []events.Envelope) (events.AppendResult, error) {
	res, err := s.JetStreamStore.Append(ctx, app, expected, evs)
	if err == nil && evs[0].CausationID == s.causationID {
		stopHere()
	}
	return res, err
}

// killAtCrashPoint runs a processor in a child process until it reaches
// point while handling commandID, and kills it there with SIGKILL.
func killAtCrashPoint(t *testing.T, natsURL, point, commandID string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashingProcessorChild$")
	cmd.Env = append(os.Environ(), envChildNATS+"="+natsURL, envCrashPoint+"="+point, envCrashCommand+"="+commandID)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reached := make(chan bool, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if lines.Text() == crashedLine {
				reached <- true
				return
			}
		}
		reached <- false
	}()
	ctx := testContext(t)
	select {
	case ok := <-reached:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("the child processor ended before the crash point %s", point)
		}
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the child processor did not reach the crash point %s", point)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

// A processor killed with SIGKILL while it handles a command, before the
// command is acknowledged, leaves a command that JetStream redelivers. The
// next processor must answer it with the outcome the first one decided
// (or would have, for events it appended) and give it no second effect,
// even though the app has moved on so that deciding again would differ.
func TestKilledProcessorsCommandKeepsItsOutcome(t *testing.T) {
	t.Parallel()
	type scenario struct {
		// command is sent while the app has revisions v1 (current) and v2,
		// min_concurrency 1.
		command func(v1 string) events.Command
		// moveOn changes the app after the crash so that the command would
		// now be decided differently.
		moveOn func(v2 string) events.Command
		want   events.OutcomeStatus
		code   string
		// check inspects the app's state after the redelivery.
		check func(t *testing.T, state aggregates.App, v1 string)
	}
	minConcurrency := func(n int) events.Command {
		return events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: &n}}
	}
	wantMin := func(n int) func(*testing.T, aggregates.App, string) {
		return func(t *testing.T, state aggregates.App, _ string) {
			if state.Runtime.MinConcurrency != n {
				t.Errorf("min_concurrency = %d, want %d", state.Runtime.MinConcurrency, n)
			}
		}
	}
	accepted := scenario{
		command: func(string) events.Command { return minConcurrency(2) },
		moveOn:  func(string) events.Command { return minConcurrency(3) },
		want:    events.OutcomeAccepted,
		check:   wantMin(3),
	}
	for _, tc := range []struct {
		name  string
		point string
		scenario
	}{
		{"accepted, killed after appending its events", afterAppend, accepted},
		{"accepted, killed after recording its outcome", afterOutcome, accepted},
		{"noop, killed after recording its outcome", afterOutcome, scenario{
			command: func(string) events.Command { return minConcurrency(1) },
			moveOn:  func(string) events.Command { return minConcurrency(0) },
			want:    events.OutcomeNoOp, code: aggregates.CodeNothingToChange,
			check: wantMin(0),
		}},
		{"rejected, killed after recording its outcome", afterOutcome, scenario{
			command: func(v1 string) events.Command { return events.DeleteRevision{RevisionID: v1} },
			moveOn:  func(v2 string) events.Command { return events.SetRevision{RevisionID: v2} },
			want:    events.OutcomeRejected, code: aggregates.CodeRevisionIsCurrent,
			check: func(t *testing.T, state aggregates.App, v1 string) {
				if state.Revisions[v1].Deleted {
					t.Errorf("revision %s was deleted by a command that was refused", v1)
				}
			},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBus(t)
			ctx := testContext(t)
			direct, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: b.srv.ClientURL(), JetStream: b.js, Store: b.store})
			if err != nil {
				t.Fatal(err)
			}
			process := accepting(t, ctx, direct, "crash")
			v2 := process(events.Deploy{Command: "serve"}).RevisionID
			process(events.CompleteDeploy{RevisionID: v2})
			v1 := process(events.Deploy{Command: "serve"}).RevisionID
			process(events.CompleteDeploy{RevisionID: v1})
			process(minConcurrency(1))

			cmd := events.NewCommand("crash", tc.command(v1), alice)
			if err := b.client.Send(ctx, cmd); err != nil {
				t.Fatal(err)
			}
			killAtCrashPoint(t, b.srv.ClientURL(), tc.point, cmd.CommandID)
			var first events.Outcome
			if tc.point == afterOutcome {
				if first, err = b.client.Await(ctx, cmd.CommandID); err != nil {
					t.Fatal(err)
				}
			}
			process(tc.moveOn(v2))
			// A command of another app in the same partition waits behind
			// the redelivered one.
			other := events.NewCommand(appInPartitionOf(t, "crash"), events.Deploy{Command: "serve"}, alice)
			if err := b.client.Send(ctx, other); err != nil {
				t.Fatal(err)
			}

			var mu sync.Mutex
			var redelivered []events.Outcome
			p, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: b.srv.ClientURL(), JetStream: b.js, Store: b.store,
				OnOutcome: func(o processor.OutcomeParams) {
					mu.Lock()
					defer mu.Unlock()
					if o.Outcome.CommandID == cmd.CommandID {
						redelivered = append(redelivered, o.Outcome)
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			runProcessor(t, p)
			if o, err := b.client.Await(ctx, other.CommandID); err != nil || o.Status != events.OutcomeAccepted {
				t.Fatalf("the other app's command: %+v, %v", o, err)
			}

			final, err := b.client.Await(ctx, cmd.CommandID)
			if err != nil {
				t.Fatal(err)
			}
			if final.Status != tc.want || final.Code != tc.code || final.Duplicate {
				t.Fatalf("stored outcome %+v, want %s %q, stored without the duplicate flag", final, tc.want, tc.code)
			}
			if first.CommandID != "" && (first.Status != final.Status || first.Message != final.Message || first.LastSequence != final.LastSequence) {
				t.Fatalf("the outcome changed from %+v to %+v", first, final)
			}
			mu.Lock()
			if len(redelivered) != 1 || !redelivered[0].Duplicate || redelivered[0].Status != tc.want {
				t.Errorf("the new processor answered %+v; want one duplicate %s", redelivered, tc.want)
			}
			mu.Unlock()

			history, err := b.store.Load(ctx, "crash", 0)
			if err != nil {
				t.Fatal(err)
			}
			caused := 0
			for _, env := range history {
				if env.CausationID == cmd.CommandID {
					caused++
					if env.Sequence != final.FirstSequence {
						t.Errorf("event at %d, outcome says %d", env.Sequence, final.FirstSequence)
					}
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tc.want == events.OutcomeAccepted]; caused != want {
				t.Errorf("%d events caused by the command, want %d", caused, want)
			}
			tc.check(t, aggregates.Fold("crash", history), v1)
		})
	}
}
