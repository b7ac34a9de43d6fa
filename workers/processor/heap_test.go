package processor_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/events"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/processor"
)

// The heap test runs a processor in a child process (this test binary,
// running TestHeapMeasuringProcessorChild), so that what it measures is
// the processor's heap, not the NATS server's, which grows with the
// streams (one outcome subject per command).
const (
	envHeapNATS     = "REVLINE_TEST_HEAP_NATS"
	envHeapCommands = "REVLINE_TEST_HEAP_COMMANDS"
	heapLine        = "REVLINE-HEAP"
)

// heapCommands is how many commands the heap test sends by default: few
// enough for `go test -race` on 2 cores. REVLINE_TEST_HEAP_COMMANDS sets
// another count: `make test` runs it again, without -race, with the
// issue's 200,000 (about a minute on 2 cores).
const heapCommands = 4000

// heapWarmUp commands are processed before the first measurement.
const heapWarmUp = 1000

// heapBound is how much the processor's heap may grow from the first
// measurement to the last: a processor that kept something per command (a
// command id, an outcome) would grow by at least 100 bytes a command.
const heapBound = 256 << 10

// TestHeapMeasuringProcessorChild is the child process of
// TestProcessorHeapStaysBoundedOverManyCommands; run alone it does nothing.
// It processes commands against one app and prints its live heap after
// heapWarmUp commands and after the last.
func TestHeapMeasuringProcessorChild(t *testing.T) {
	url := os.Getenv(envHeapNATS)
	if url == "" {
		t.Skip("the child process of TestProcessorHeapStaysBoundedOverManyCommands")
	}
	commands, err := strconv.Atoi(os.Getenv(envHeapCommands))
	if err != nil {
		t.Fatal(err)
	}
	js, store := connectChild(t, url)
	p, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{}, NATSURL: url, JetStream: js, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	process := accepting(t, context.Background(), p, "heap")
	revision := process(events.Deploy{Command: "serve"}).RevisionID
	process(events.CompleteDeploy{RevisionID: revision})
	for i := range commands {
		if i == heapWarmUp {
			fmt.Println(heapLine, i, liveHeap())
		}
		keepAlive := events.Seconds(61 + i%2) // every command changes the app
		process(events.Scale{Runtime: events.RuntimeOverrides{KeepAlive: &keepAlive}})
	}
	fmt.Println(heapLine, commands, liveHeap())
	runtime.KeepAlive(p) // measured with its caches, not after them
}

// liveHeap returns the bytes of the heap still in use after a full
// collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// The processor's memory does not grow with the number of commands an app
// has had: idempotency rests on the outcome log and a few recent command
// ids per app, not on every id it has seen.
func TestProcessorHeapStaysBoundedOverManyCommands(t *testing.T) {
	t.Parallel()
	commands := heapCommands
	if n := os.Getenv(envHeapCommands); n != "" {
		var err error
		if commands, err = strconv.Atoi(n); err != nil || commands <= heapWarmUp {
			t.Fatalf("%s=%q: want a number of commands above %d", envHeapCommands, n, heapWarmUp)
		}
	}
	b := newBus(t)
	// About a millisecond a command under the race detector, with room.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second+time.Duration(commands)*time.Millisecond)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHeapMeasuringProcessorChild$")
	cmd.Env = append(os.Environ(), envHeapNATS+"="+b.srv.ClientURL(), envHeapCommands+"="+strconv.Itoa(commands))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the child processor: %v\n%s", err, out)
	}
	heap := map[int]uint64{}
	for lines := bufio.NewScanner(strings.NewReader(string(out))); lines.Scan(); {
		var at int
		var bytes uint64
		if _, err := fmt.Sscanf(lines.Text(), heapLine+" %d %d", &at, &bytes); err == nil {
			heap[at] = bytes
		}
	}
	first, last := heap[heapWarmUp], heap[commands]
	if first == 0 || last == 0 {
		t.Fatalf("the child reported no heap after %d and %d commands:\n%s", heapWarmUp, commands, out)
	}
	t.Logf("live heap after %d commands: %d bytes; after %d: %d bytes", heapWarmUp, first, commands, last)
	if last > first+heapBound {
		t.Errorf("the processor's heap grew by %d bytes over %d commands to one app, want at most %d", last-first, commands-heapWarmUp, heapBound)
	}
}
