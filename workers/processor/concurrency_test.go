package processor_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/processor"
)

// Many clients send commands for many apps at once, each app's commands
// from several clients, to two processor replicas with caches of their
// own: every command has exactly one effect, each app's commands take
// effect in the order the command stream stored them, and no two appends
// for one app are ever under way at once, in one replica or across them.
func TestManyClientsAndAppsOnOneNode(t *testing.T) {
	t.Parallel()
	checkManyClientsAndApps(t, []*server.Server{embeddedtest.Start(t)}, 2)
}

// The same on a 3-node cluster, streams and consumers with three replicas,
// a processor replica on each node.
func TestManyClientsAndAppsOnACluster(t *testing.T) {
	t.Parallel()
	checkManyClientsAndApps(t, embeddedtest.StartCluster(t, 3), 3)
}

func checkManyClientsAndApps(t *testing.T, nodes []*server.Server, processors int) {
	const (
		apps            = 24
		clients         = 12
		commandsEach    = 15
		appsPerClient   = 5
		resentPerClient = 2
	)
	replicas := len(nodes)
	connect := func(i int) jetstream.JetStream {
		t.Helper()
		_, js := embeddedtest.Connect(t, nodes[i%len(nodes)])
		return js
	}
	// 180 commands with -race on a 3-node cluster, on 2 cores that may be
	// busy: more than the 30 s of testContext.
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	js := connect(0)
	if err := commandbus.EnsureStreams(ctx, js, replicas); err != nil {
		t.Fatal(err)
	}
	if _, err := events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js, Replicas: replicas}); err != nil {
		t.Fatal(err)
	}
	deciding := &appsDeciding{apps: map[string]bool{}}
	for i := range processors {
		pjs := connect(i)
		store, err := events.OpenJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: pjs})
		if err != nil {
			t.Fatal(err)
		}
		p, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: nodes[i%len(nodes)].ClientURL(), JetStream: pjs, Store: exclusiveAppends{store, deciding}})
		if err != nil {
			t.Fatal(err)
		}
		runProcessor(t, p)
	}

	var wg sync.WaitGroup
	for c := range clients {
		client := commandbus.NewClient(connect(c))
		wg.Go(func() {
			var sent []events.Outcome
			var first []events.CommandEnvelope
			for i := range commandsEach {
				// Each client spreads its commands over a few apps, and
				// every app gets commands from several clients.
				app := fmt.Sprintf("app%d", (c*appsPerClient+i%appsPerClient)%apps)
				cmd := events.NewCommand(app, events.Deploy{Command: "serve", Message: fmt.Sprintf("client %d command %d", c, i)}, alice)
				o, err := client.Execute(ctx, cmd)
				if err != nil || o.Status != events.OutcomeAccepted || o.Duplicate {
					t.Errorf("%s for %s: %+v, %v", cmd.Type, app, o, err)
					return
				}
				sent = append(sent, o)
				first = append(first, cmd)
			}
			// A command sent again has no second effect: its first outcome.
			for i := range resentPerClient {
				o, err := client.Execute(ctx, first[i])
				if err != nil || !o.Duplicate || o.FirstSequence != sent[i].FirstSequence || o.RevisionID != sent[i].RevisionID {
					t.Errorf("resent command: %+v, %v; want the first outcome %+v", o, err, sent[i])
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	checkOverlapsWereTakeovers(ctx, t, js, deciding)

	// Each app's commands, in the order the command stream stored them.
	stored := map[string][]string{}
	commands, err := js.Stream(ctx, commandbus.CommandStreamName)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= commands.CachedInfo().State.LastSeq; seq++ {
		msg, err := commands.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		partition, command, _ := strings.Cut(strings.TrimPrefix(msg.Subject, commandbus.PartitionSubjectPrefix), ".")
		app, _, _ := strings.Cut(command, ".")
		if want := fmt.Sprint(partitionOf(app)); partition != want {
			t.Fatalf("a command of %s is stored on %s, want partition %s", app, msg.Subject, want)
		}
		stored[app] = append(stored[app], msg.Header.Get(nats.MsgIdHdr))
	}
	if total := commands.CachedInfo().State.LastSeq; total != clients*commandsEach || len(stored) != apps {
		t.Fatalf("the command stream holds %d commands of %d apps, want %d of %d", total, len(stored), clients*commandsEach, apps)
	}
	store, err := events.OpenJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js})
	if err != nil {
		t.Fatal(err)
	}
	for app, want := range stored {
		history, err := store.Load(ctx, app, 0)
		if err != nil {
			t.Fatal(err)
		}
		var effects []string
		for _, env := range history {
			effects = append(effects, env.CausationID)
		}
		if !slices.Equal(effects, want) {
			t.Errorf("%s: commands took effect in the order %v, want once each in the stream's order %v", app, effects, want)
		}
	}
}

// appsDeciding tracks the apps whose events some processor is appending,
// and counts the times two appends for one app overlapped.
type appsDeciding struct {
	mu       sync.Mutex
	apps     map[string]bool
	overlaps []string
}

// exclusiveAppends records when two appends for one app overlap,
// whichever processors make them.
type exclusiveAppends struct {
	*events.JetStreamStore
	deciding *appsDeciding
}

func (s exclusiveAppends) Append(ctx context.Context, app string, expected uint64, evs []events.Envelope) (events.AppendResult, error) {
	d := s.deciding
	d.mu.Lock()
	if d.apps[app] {
		d.overlaps = append(d.overlaps, app)
	}
	d.apps[app] = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.apps, app)
		d.mu.Unlock()
	}()
	return s.JetStreamStore.Append(ctx, app, expected, evs)
}

// appendBlocker holds the appends for one app until released: a command
// whose processing hangs.
type appendBlocker struct {
	*events.JetStreamStore
	app     string
	blocked chan struct{}
	release chan struct{}
}

func (s *appendBlocker) Append(ctx context.Context, app string, expected uint64, evs []events.Envelope) (events.AppendResult, error) {
	if app == s.app {
		close(s.blocked)
		select {
		case <-s.release:
		case <-ctx.Done():
			return events.AppendResult{}, ctx.Err()
		}
	}
	return s.JetStreamStore.Append(ctx, app, expected, evs)
}

// A command that hangs holds up its own partition only: the commands of an
// app in another partition are decided meanwhile.
func TestHangingCommandHoldsUpOnlyItsPartition(t *testing.T) {
	t.Parallel()
	b := newBus(t)
	ctx := testContext(t)
	stuck := &appendBlocker{JetStreamStore: b.store, app: "stuck", blocked: make(chan struct{}), release: make(chan struct{})}
	p, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: b.srv.ClientURL(), JetStream: b.js, Store: stuck})
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	hanging := deploy("stuck")
	if err := b.client.Send(ctx, hanging); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stuck.blocked:
	case <-ctx.Done():
		t.Fatal("the hanging command was never processed")
	}
	free := "free"
	for i := 0; partitionOf(free) == partitionOf("stuck"); i++ {
		free = fmt.Sprintf("free%d", i)
	}
	if o := b.execute(t, deploy(free)); o.Status != events.OutcomeAccepted {
		t.Fatalf("%s, in another partition: %+v", free, o)
	}
	close(stuck.release)
	if o, err := b.client.Await(ctx, hanging.CommandID); err != nil || o.Status != events.OutcomeAccepted {
		t.Fatalf("the hanging command, released: %+v, %v", o, err)
	}
}

// checkOverlapsWereTakeovers fails the test if two appends for one app
// overlapped while no command was ever delivered twice. A partition's
// consumer hands a command to one replica at a time; only a replica that
// stalls past the ack wait (1 s without a progress ack, which a loaded
// 2-core machine running a 3-node cluster under -race now and then does)
// loses it to another while it still works on it. Then the two overlap,
// the expected-sequence check keeps one effect (checked by the caller),
// and the consumers count a redelivery.
func checkOverlapsWereTakeovers(ctx context.Context, t *testing.T, js jetstream.JetStream, d *appsDeciding) {
	t.Helper()
	d.mu.Lock()
	overlaps := slices.Clone(d.overlaps)
	d.mu.Unlock()
	if len(overlaps) == 0 {
		return
	}
	commands, err := js.Stream(ctx, commandbus.CommandStreamName)
	if err != nil {
		t.Fatal(err)
	}
	delivered := uint64(0)
	for n := range commandbus.Partitions {
		c, err := commands.Consumer(ctx, processor.PartitionConsumerName(n))
		if err != nil {
			t.Fatal(err)
		}
		delivered += c.CachedInfo().Delivered.Consumer
	}
	stored := commands.CachedInfo().State.Msgs
	if delivered <= stored {
		t.Fatalf("appends for %v overlapped, and no command was delivered twice: two replicas decided one app at once", overlaps)
	}
	t.Logf("appends for %v overlapped: a replica stalled past the ack wait and another took its command over (%d deliveries of %d commands)", overlaps, delivered, stored)
}
