package aggregates_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
)

func snapshotState() aggregates.App {
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	return aggregates.App{
		Name: "web", Version: 42, Current: "r1", LastNumber: 1, HasRuntime: true, LastHash: strings.Repeat("ab", 32),
		// Not a state the fold makes (a deleted app has no current
		// revision), but every field must survive the round trip.
		Deleted: true, DeletedAt: at, DeletedBy: "carol",
		Revisions: map[string]*aggregates.Revision{"r1": {ID: "r1", Number: 1, Command: "./web", CreatedAt: at, Status: events.StatusDeployed}},
		Rollout:   &aggregates.Rollout{ID: "ro", RevisionID: "r1", RequestedAt: at},
		Secrets:   map[string]aggregates.Secret{"TOKEN": {Version: 3, SetAt: at, SetBy: "alice"}},
		Runners:   map[string]*aggregates.Runner{"u1": {RevisionID: "r1", State: events.RunnerIdle, Stop: &aggregates.StopRequest{Force: true, By: "bob"}}},
	}
}

// A clone shares nothing with its original: changing either leaves the
// other as it was.
func TestCloneIsDeep(t *testing.T) {
	t.Parallel()
	original := snapshotState()
	clone := original.Clone()
	if !reflect.DeepEqual(clone, original) {
		t.Fatalf("clone %+v differs from %+v", clone, original)
	}
	clone.Revisions["r1"].Status = events.StatusFailed
	clone.Revisions["r2"] = &aggregates.Revision{ID: "r2"}
	clone.Runners["u1"].State = events.RunnerRunning
	clone.Runners["u1"].Stop.Force = false
	clone.Rollout.ID = "other"
	clone.Secrets["TOKEN"] = aggregates.Secret{Version: 4}
	if !reflect.DeepEqual(original, snapshotState()) {
		t.Errorf("changing the clone changed the original: %+v", original)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	snap := aggregates.Snapshot{State: snapshotState(), Accepted: []events.Outcome{{CommandID: "c1", App: "web", Status: events.OutcomeAccepted, FirstSequence: 41, LastSequence: 42}}}
	data, err := aggregates.EncodeSnapshot(snap)
	if err != nil {
		t.Fatal(err)
	}
	got, err := aggregates.DecodeSnapshot("web", events.Snapshot{Schema: aggregates.SnapshotSchema, Sequence: 42, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got.State.Revisions {
		r.CreatedAt = r.CreatedAt.UTC()
	}
	got.State.Rollout.RequestedAt = got.State.Rollout.RequestedAt.UTC()
	got.State.DeletedAt = got.State.DeletedAt.UTC()
	for name, s := range got.State.Secrets {
		s.SetAt = s.SetAt.UTC()
		got.State.Secrets[name] = s
	}
	if !reflect.DeepEqual(got, snap) {
		t.Errorf("decoded %+v\nwant %+v", got, snap)
	}
}

// A snapshot is refused unless it is exactly what this version writes,
// for the app and the sequence it is stored as.
func TestSnapshotIsRefusedUnlessExactlyWhatThisVersionWrites(t *testing.T) {
	t.Parallel()
	data, err := aggregates.EncodeSnapshot(aggregates.Snapshot{State: snapshotState()})
	if err != nil {
		t.Fatal(err)
	}
	extra, err := msgpack.Marshal(map[string]any{"State": map[string]any{"Name": "web", "Version": 42, "Colour": "red"}})
	if err != nil {
		t.Fatal(err)
	}
	fewer, err := msgpack.Marshal([]any{[]any{"web", 42}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, app, want string
		stored          events.Snapshot
	}{
		{"another schema", "web", "schema", events.Snapshot{Schema: aggregates.SnapshotSchema + 1, Sequence: 42, Data: data}},
		{"garbage", "web", "decode", events.Snapshot{Schema: aggregates.SnapshotSchema, Sequence: 42, Data: []byte("garbage")}},
		{"trailing bytes", "web", "trailing", events.Snapshot{Schema: aggregates.SnapshotSchema, Sequence: 42, Data: append(data, 0xc0)}},
		{"unknown field", "web", "Colour", events.Snapshot{Schema: aggregates.SnapshotSchema, Sequence: 42, Data: extra}},
		{"another number of fields", "web", "number of fields", events.Snapshot{Schema: aggregates.SnapshotSchema, Sequence: 42, Data: fewer}},
		{"another app", "api", "holds app", events.Snapshot{Schema: aggregates.SnapshotSchema, Sequence: 42, Data: data}},
		{"another sequence", "web", "holds app", events.Snapshot{Schema: aggregates.SnapshotSchema, Sequence: 43, Data: data}},
	} {
		if _, err := aggregates.DecodeSnapshot(tc.app, tc.stored); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error about %q", tc.name, err, tc.want)
		}
	}
}
