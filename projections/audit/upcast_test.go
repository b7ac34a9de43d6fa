package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/audit"
)

// revisionCreatedV1 is a revision.created payload in the shape of a
// made-up version 1 that called the command line "cmd": a map, so that it
// is stored exactly so.
type revisionCreatedV1 map[string]any

func (revisionCreatedV1) EventType() string { return events.TypeRevisionCreated }

// renameCmd is the made-up upcaster from that version 1 to version 2,
// today's RevisionCreated, which calls it "command".
func renameCmd(payload map[string]any) (map[string]any, error) {
	cmd, ok := payload["cmd"].(string)
	if !ok {
		return nil, errors.New(`no "cmd" string`)
	}
	payload["command"] = cmd
	delete(payload, "cmd")
	return payload, nil
}

// TestVersion1EventReadAsVersion2 stores a revision.created at version 1
// of a schema whose version 2 renamed a field, then reads it back with a
// registry that knows the upcaster, through every reader: the store's Load
// (the processor's and the runner worker's way in, folded as they fold
// it), its Follow, the revision-history projection and the audit log. Each
// sees version 2, with the field under its new name; a reader without the
// upcaster sees the field missing, which is what the upcaster is for.
func TestVersion1EventReadAsVersion2(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	srv := embeddedtest.Start(t)
	_, js := embeddedtest.Connect(t, srv)
	open := func(reg *events.Registry) *events.JetStreamStore {
		store, err := events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js, Registry: reg, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return store
	}
	writer := open(nil)
	store := open(events.NewRegistry(events.WithUpcasters(events.TypeRevisionCreated, renameCmd)))

	const app, cmdLine = "upcast", "python serve.py --v1"
	revisionID := uuid.NewString()
	current, err := msgpack.Marshal(events.RevisionCreated{
		RevisionID: revisionID, Number: 1, Command: cmdLine, Code: events.DefaultCodeParams(),
		Runtime: events.DefaultRuntimeParams(), Strategy: events.StrategyRolling,
	})
	if err != nil {
		t.Fatal(err)
	}
	v1 := revisionCreatedV1{}
	if err := msgpack.Unmarshal(current, (*map[string]any)(&v1)); err != nil {
		t.Fatal(err)
	}
	v1["cmd"] = v1["command"]
	delete(v1, "command")
	commandID := uuid.NewString()
	env := events.NewEnvelope(app, v1, events.Metadata{Actor: "alice", CorrelationID: commandID, CausationID: commandID}, t0)
	if env.SchemaVersion != 1 {
		t.Fatalf("written at version %d, want 1", env.SchemaVersion)
	}
	chained, err := events.Chain("", []events.Envelope{env})
	if err != nil {
		t.Fatal(err)
	}
	res, err := writer.Append(ctx, app, 0, chained)
	if err != nil {
		t.Fatal(err)
	}
	seq := res.LastSequence

	check := func(reader string, got events.Envelope) {
		t.Helper()
		ev, ok := got.Event.(events.RevisionCreated)
		if !ok || got.SchemaVersion != 2 || ev.Command != cmdLine || ev.RevisionID != revisionID {
			t.Errorf("%s: version %d, %#v; want version 2 with command %q", reader, got.SchemaVersion, got.Event, cmdLine)
		}
	}

	loaded, err := store.Load(ctx, app, 0)
	if err != nil || len(loaded) != 1 {
		t.Fatalf("Load: %d events, %v", len(loaded), err)
	}
	check("Load", loaded[0])
	if rev := aggregates.Fold(app, loaded).Revisions[revisionID]; rev == nil || rev.Command != cmdLine {
		t.Errorf("folded for the processor and the runner worker: %+v, want command %q", rev, cmdLine)
	}

	errDone := errors.New("done")
	err = store.Follow(ctx, 1, func(got events.Envelope, decodeErr error) error {
		if decodeErr != nil {
			return decodeErr
		}
		check("Follow", got)
		return errDone
	})
	if !errors.Is(err, errDone) {
		t.Fatalf("Follow: %v", err)
	}

	model, err := projections.Rebuild(ctx, store, seq)
	if err != nil {
		t.Fatal(err)
	}
	if view, ok := model.Revision(app, revisionID); !ok || view.Command != cmdLine {
		t.Errorf("projection: %+v, want command %q", view, cmdLine)
	}

	var entries []audit.Entry
	if _, err := audit.Each(ctx, store, audit.Filter{}, 0, func(e audit.Entry) error {
		entries = append(entries, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Error != "" {
		t.Fatalf("audit: %+v", entries)
	}
	if ev, _ := entries[0].Payload.(events.RevisionCreated); entries[0].SchemaVersion != 2 || ev.Command != cmdLine {
		t.Errorf("audit: version %d, %#v; want version 2 with command %q", entries[0].SchemaVersion, entries[0].Payload, cmdLine)
	}

	// The hash covers the event as stored, at version 1.
	if reports, err := audit.VerifyChains(ctx, store, app); err != nil || len(reports) != 1 || !reports[0].OK || reports[0].Events != 1 {
		t.Errorf("the chain of the upcast event: %+v, %v; want OK with 1 event", reports, err)
	}

	old, err := writer.Load(ctx, app, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev := old[0].Event.(events.RevisionCreated); old[0].SchemaVersion != 1 || ev.Command != "" {
		t.Errorf("without the upcaster: version %d, command %q; want version 1 and the field missing", old[0].SchemaVersion, ev.Command)
	}

	// An export is read back through the same upcasters: the line an
	// older build wrote of this event (version 1, "cmd") reads as version
	// 2; a build without the upcaster refuses the field it does not know.
	oldLine, err := json.Marshal(map[string]any{
		"sequence": seq, "id": env.EventID, "type": events.TypeRevisionCreated, "schema_version": 1, "app": app,
		"time": t0, "actor": "alice", "correlation_id": commandID, "causation_id": commandID, "payload": v1,
	})
	if err != nil {
		t.Fatal(err)
	}
	upcasting := events.NewRegistry(events.WithUpcasters(events.TypeRevisionCreated, renameCmd))
	rec, err := audit.DecodeRecord(upcasting, oldLine)
	if ev, _ := rec.Payload.(events.RevisionCreated); err != nil || rec.SchemaVersion != 2 || ev.Command != cmdLine || ev.RevisionID != revisionID {
		t.Errorf("a version-1 export line read back: version %d, %#v, %v; want version 2 with command %q", rec.SchemaVersion, rec.Payload, err, cmdLine)
	}
	if _, err := audit.DecodeRecord(events.NewRegistry(), oldLine); err == nil || !strings.Contains(err.Error(), `unknown field "cmd"`) {
		t.Errorf("a version-1 export line read without the upcaster: %v, want the unknown field refused", err)
	}
	// Today's export of the event (version 2) reads back as it was.
	newLine, err := json.Marshal(entries[0].Record)
	if err != nil {
		t.Fatal(err)
	}
	again, err := audit.DecodeRecord(upcasting, newLine)
	if err != nil || !reflect.DeepEqual(again, entries[0].Record) {
		t.Errorf("today's export line read back: %+v, %v; want %+v", again, err, entries[0].Record)
	}
	// The export checks out offline: its stored version-1 payload, upcast,
	// is its version-2 payload, and the hash covers it as stored.
	if sum, err := audit.CheckExport(bytes.NewReader(newLine), upcasting, ""); err != nil || sum.Records != 1 || !sum.Chains[0].OK {
		t.Errorf("checking today's export: %+v, %v", sum, err)
	}
	if _, err := audit.CheckExport(bytes.NewReader(newLine), events.NewRegistry(), ""); err == nil || !strings.Contains(err.Error(), "newer than this build knows") {
		t.Errorf("checking it without the upcaster: %v, want its version refused", err)
	}
}
