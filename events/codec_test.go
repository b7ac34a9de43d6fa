package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/revline/revline/events"
	"github.com/vmihailenco/msgpack/v5"
)

func ptr[T any](v T) *T { return &v }

const (
	revisionID = "0193f1c2-7a4b-7c3d-8e9f-0a1b2c3d4e5f"
	rolloutID  = "0193f1c2-aaaa-7c3d-8e9f-0a1b2c3d4e5f"
	runnerID   = "0193f1c2-bbbb-7c3d-8e9f-0a1b2c3d4e5f"
)

// sampleCommands holds one command of every registered type, with every
// field set, so that a field lost on the way shows.
func sampleCommands() []events.Command {
	return []events.Command{
		events.Deploy{
			RevisionID: revisionID,
			Command:    "python3 -m http.server $PORT",
			Code: events.CodeOverrides{
				MachineType: ptr("GPU-A100"), MaxMultiplexing: ptr(4), StartupTimeout: ptr(events.Seconds(120)),
			},
			Runtime: events.RuntimeOverrides{
				KeepAlive: ptr(events.Seconds(300)), MinConcurrency: ptr(2), MaxConcurrency: ptr(8),
				ConcurrencyBuffer: ptr(1), RequestTimeout: ptr(events.Seconds(90)),
			},
			ResetScale:  true,
			Strategy:    events.StrategyRecreate,
			Message:     "first version",
			Annotations: map[string]string{"git_sha": "abc123", "team": "ml"},
		},
		events.SetRevision{RevisionID: revisionID, Strategy: events.StrategyRolling, Message: "roll back"},
		events.Rollout{RolloutID: rolloutID, Force: true},
		events.DeleteRevision{RevisionID: revisionID},
		events.Scale{
			Runtime: events.RuntimeOverrides{MinConcurrency: ptr(0), KeepAlive: ptr(events.Seconds(0))},
			Code:    events.CodeOverrides{MachineType: ptr("L"), StartupTimeout: ptr(events.Seconds(30))},
		},
		events.Suspend{},
		events.Resume{},
		events.CompleteDeploy{RevisionID: revisionID},
		events.FailDeploy{RevisionID: revisionID, Reason: "runner exited with status 1"},
		events.CompleteRollout{RolloutID: rolloutID, Replaced: 3, DroppedRequests: 2},
		events.FailRollout{RolloutID: rolloutID, Replaced: 1, DroppedRequests: 2, Reason: "3 replacement runners in a row did not start"},
		events.ReportRunner{RunnerID: runnerID, RevisionID: revisionID, State: events.RunnerTerminated, PID: 4242, Port: 43121, Reason: "force rollout; 2 in-flight request(s) dropped", RolloutID: rolloutID, DroppedRequests: 2},
		events.SetSecret{Name: "HF_TOKEN", Version: 7},
		events.UnsetSecret{Name: "HF_TOKEN"},
		events.StopRunner{RunnerID: runnerID, Force: true, Replace: true},
		events.DeleteApp{Reason: "made by mistake"},
	}
}

// sampleEvents holds one event of every registered type, with every field set.
func sampleEvents() []events.Event {
	code := events.CodeParams{MachineType: "GPU-A100", MaxMultiplexing: 4, StartupTimeout: 120}
	runtime := events.RuntimeParams{KeepAlive: 300, MinConcurrency: 2, MaxConcurrency: 8, ConcurrencyBuffer: 1, RequestTimeout: 90}
	return []events.Event{
		events.RevisionCreated{
			RevisionID: revisionID, Number: 1, Command: "python3 -m http.server $PORT", Code: code, Runtime: runtime,
			ResetScale: true, Strategy: events.StrategyRecreate, Message: "first version",
			Annotations: map[string]string{"git_sha": "abc123"},
		},
		events.RevisionDeployed{RevisionID: revisionID, RolledBackTo: "0193f1c2-0000-7c3d-8e9f-0a1b2c3d4e5f"},
		events.RevisionFailed{RevisionID: revisionID, Reason: "runner exited with status 1"},
		events.RevisionDeleted{RevisionID: revisionID},
		events.CurrentRevisionSet{
			From: "0193f1c2-0000-7c3d-8e9f-0a1b2c3d4e5f", To: revisionID, Reason: "rollback",
			Strategy: events.StrategyRolling, Message: "back to the good one", Code: code, Runtime: runtime,
			Inherited: []string{"keep_alive", "min_concurrency"}, InheritedFrom: "0193f1c2-0000-7c3d-8e9f-0a1b2c3d4e5f",
		},
		events.AppScaled{
			Before: events.DefaultRuntimeParams(), After: runtime,
			CodeBefore: events.DefaultCodeParams(), CodeAfter: code,
			Changed: []string{"keep_alive", "min_concurrency", "machine_type"},
		},
		events.AppSuspended{RevisionID: revisionID},
		events.AppResumed{RevisionID: revisionID},
		events.RolloutRequested{RolloutID: rolloutID, RevisionID: revisionID, Force: true},
		events.RolloutCompleted{RolloutID: rolloutID, RevisionID: revisionID, Force: true, Replaced: 3, DroppedRequests: 2},
		events.RolloutFailed{RolloutID: rolloutID, RevisionID: revisionID, Force: true, Replaced: 1, DroppedRequests: 2, Reason: "3 replacement runners in a row did not start"},
		events.RunnerStateChanged{RunnerID: runnerID, RevisionID: revisionID, State: events.RunnerTerminated, PID: 4242, Port: 43121, Reason: "force rollout; 2 in-flight request(s) dropped", RolloutID: rolloutID, DroppedRequests: 2},
		events.SecretSet{Name: "HF_TOKEN", Version: 7},
		events.SecretUnset{Name: "HF_TOKEN"},
		events.RunnerStopRequested{RunnerID: runnerID, RevisionID: revisionID, Force: true, Replace: true},
		events.AppDeleted{RevisionID: revisionID, Reason: "made by mistake", Secrets: []string{"HF_TOKEN"}},
		events.WebhookAdded{WebhookID: "3f2a9c0b1d4e", Target: "https://example.com", App: "web", Events: []string{"app.*"}, StartSequence: 42, By: "alice", Revision: 7},
		events.WebhookDisabled{WebhookID: "3f2a9c0b1d4e", By: "worker:webhooks", Reason: "5 failed attempts in a row", Revision: 8},
		events.WebhookEnabled{WebhookID: "3f2a9c0b1d4e", By: "bob", Reason: "receiver fixed", Revision: 9},
		events.WebhookRemoved{WebhookID: "3f2a9c0b1d4e", By: "bob", Reason: "gone", Revision: 10},
	}
}

func TestSamplesCoverEveryRegisteredType(t *testing.T) {
	t.Parallel()
	reg := events.NewRegistry()
	var commandNames, eventNames []string
	for _, c := range sampleCommands() {
		commandNames = append(commandNames, c.CommandType())
		checkEveryFieldSet(t, c)
	}
	for _, e := range sampleEvents() {
		eventNames = append(eventNames, e.EventType())
		checkEveryFieldSet(t, e)
	}
	for _, tc := range []struct {
		kind              string
		registered, tests []string
	}{
		{"command", reg.CommandTypes(), commandNames},
		{"event", reg.EventTypes(), eventNames},
	} {
		slices.Sort(tc.registered)
		slices.Sort(tc.tests)
		if !slices.Equal(tc.registered, tc.tests) {
			t.Errorf("registered %s types %v, samples cover %v", tc.kind, tc.registered, tc.tests)
		}
	}
}

// checkEveryFieldSet fails if a top-level field of sample is zero, so that
// a field added later is not left out of the round trips.
func checkEveryFieldSet(t *testing.T, sample any) {
	t.Helper()
	v := reflect.ValueOf(sample)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("sample %T leaves field %s zero", sample, v.Type().Field(i).Name)
		}
	}
}

func TestEveryCommandRoundTripsThroughMsgpackAndJSON(t *testing.T) {
	t.Parallel()
	reg := events.NewRegistry()
	for _, cmd := range sampleCommands() {
		for _, contentType := range []string{events.ContentTypeMsgpack, events.ContentTypeJSON, ""} {
			t.Run(cmd.CommandType()+"/"+contentType, func(t *testing.T) {
				t.Parallel()
				data, err := events.Marshal(contentType, cmd)
				if err != nil {
					t.Fatal(err)
				}
				got, err := reg.DecodeCommand(cmd.CommandType(), contentType, data)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, cmd) {
					t.Fatalf("decoded %#v, want %#v", got, cmd)
				}
			})
		}
	}
}

func TestEveryEventRoundTripsThroughMsgpack(t *testing.T) {
	t.Parallel()
	reg := events.NewRegistry()
	for _, ev := range sampleEvents() {
		t.Run(ev.EventType(), func(t *testing.T) {
			t.Parallel()
			data, err := events.Marshal(events.ContentTypeMsgpack, ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := reg.DecodeEvent(ev.EventType(), data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, ev) {
				t.Fatalf("decoded %#v, want %#v", got, ev)
			}
		})
	}
}

func TestDecodeEventRefusesUnknownType(t *testing.T) {
	t.Parallel()
	_, err := events.NewRegistry().DecodeEvent("revision.exploded", []byte{0x80})
	var unknown *events.UnknownTypeError
	if !errors.As(err, &unknown) || unknown.Kind != "event" || unknown.Name != "revision.exploded" {
		t.Fatalf("err = %v, want *UnknownTypeError for the event", err)
	}
}

func TestEventMsgPreservesTheEnvelope(t *testing.T) {
	t.Parallel()
	reg := events.NewRegistry()
	occurred := time.Date(2026, 11, 25, 21, 24, 41, 236847374, time.FixedZone("CET", 3600))
	for _, ev := range sampleEvents() {
		t.Run(ev.EventType(), func(t *testing.T) {
			t.Parallel()
			meta := events.Metadata{Actor: "alice@laptop", CorrelationID: uuid.NewString(), CausationID: uuid.NewString()}
			chained, err := events.Chain("", []events.Envelope{events.NewEnvelope("my-model", ev, meta, occurred)})
			if err != nil {
				t.Fatal(err)
			}
			env := chained[0]
			msg, err := events.EventMsg(env)
			if err != nil {
				t.Fatal(err)
			}
			if want := events.EventSubject("my-model", ev.EventType()); msg.Subject != want {
				t.Errorf("subject %q, want %q", msg.Subject, want)
			}
			got, err := reg.DecodeEventMsg(msg.Header, msg.Data, 42)
			if err != nil {
				t.Fatal(err)
			}
			if !got.OccurredAt.Equal(occurred) || got.OccurredAt.Location() != time.UTC {
				t.Errorf("occurred at %v, want %v in UTC", got.OccurredAt, occurred)
			}
			want := env
			want.Sequence, want.StoredSchemaVersion = 42, want.SchemaVersion
			got.OccurredAt, want.OccurredAt = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded\n %+v\nwant\n %+v", got, want)
			}
			if got.SchemaVersion != events.SchemaVersion || got.EventID == "" {
				t.Errorf("schema version %d, event id %q", got.SchemaVersion, got.EventID)
			}
		})
	}
}

func TestEventMsgWithoutCorrelationOrCausationLeavesThemEmpty(t *testing.T) {
	t.Parallel()
	env := events.NewEnvelope("web", events.RevisionDeployed{RevisionID: revisionID}, events.Metadata{Actor: "bob"}, time.Now())
	msg, err := events.EventMsg(env)
	if err != nil {
		t.Fatal(err)
	}
	got, err := events.NewRegistry().DecodeEventMsg(msg.Header, msg.Data, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Metadata != (events.Metadata{Actor: "bob"}) {
		t.Fatalf("metadata %+v", got.Metadata)
	}
}

func TestDecodeEventMsgRefusesBadOrNewerSchemaVersions(t *testing.T) {
	t.Parallel()
	reg := events.NewRegistry()
	env := events.NewEnvelope("web", events.RevisionDeployed{RevisionID: revisionID}, events.Metadata{Actor: "bob"}, time.Now())
	for _, tc := range []struct {
		version string
		wantErr string
	}{
		{"2", "newer than this build knows"},
		{"100", "newer than this build knows"},
		{"0", "bad Revline-Schema-Version"},
		{"-1", "bad Revline-Schema-Version"},
		{"", "bad Revline-Schema-Version"},
		{"one", "bad Revline-Schema-Version"},
	} {
		t.Run(tc.version, func(t *testing.T) {
			t.Parallel()
			msg, err := events.EventMsg(env)
			if err != nil {
				t.Fatal(err)
			}
			msg.Header.Set(events.HeaderSchemaVersion, tc.version)
			_, err = reg.DecodeEventMsg(msg.Header, msg.Data, 7)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestDecodeEventMsgRefusesBadTimestampAndPayload(t *testing.T) {
	t.Parallel()
	reg := events.NewRegistry()
	env := events.NewEnvelope("web", events.RevisionDeployed{RevisionID: revisionID}, events.Metadata{Actor: "bob"}, time.Now())
	for _, tc := range []struct {
		name   string
		change func(*nats.Msg)
	}{
		{"bad occurred-at", func(m *nats.Msg) { m.Header.Set(events.HeaderOccurredAt, "yesterday") }},
		{"unknown type", func(m *nats.Msg) { m.Header.Set(events.HeaderEventType, "revision.exploded") }},
		{"garbage payload", func(m *nats.Msg) { m.Data = []byte{0xc1} }},
		{"empty payload", func(m *nats.Msg) { m.Data = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg, err := events.EventMsg(env)
			if err != nil {
				t.Fatal(err)
			}
			tc.change(msg)
			if _, err := reg.DecodeEventMsg(msg.Header, msg.Data, 7); err == nil {
				t.Fatal("decoded without error")
			}
		})
	}
}

func mustMsgpack(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCommandMsgRoundTripsThroughDecodeCommandMsg(t *testing.T) {
	t.Parallel()
	reg := events.NewRegistry()
	for _, cmd := range sampleCommands() {
		for _, contentType := range []string{events.ContentTypeMsgpack, events.ContentTypeJSON} {
			t.Run(cmd.CommandType()+"/"+contentType, func(t *testing.T) {
				t.Parallel()
				c := events.NewCommand("my-model", cmd, events.Metadata{Actor: "alice", CorrelationID: "corr-1", CausationID: "cause-1"})
				c.ContentType = contentType
				msg, err := events.CommandMsg(c)
				if err != nil {
					t.Fatal(err)
				}
				got, err := reg.DecodeCommandMsg(msg.Subject, msg.Header, msg.Data)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, c) {
					t.Fatalf("decoded\n %+v\nwant\n %+v", got, c)
				}
			})
		}
	}
}

func TestCommandMsgRefusesInvalidAppName(t *testing.T) {
	t.Parallel()
	_, err := events.CommandMsg(events.NewCommand("a.b", events.Suspend{}, events.Metadata{}))
	var invalid *events.InvalidNameError
	if !errors.As(err, &invalid) {
		t.Fatalf("err = %v, want *InvalidNameError", err)
	}
}

func TestDecodeCommandMsg(t *testing.T) {
	t.Parallel()
	reg := events.NewRegistry()
	id := uuid.NewString()
	deployMsgpack := mustMsgpack(t, map[string]any{"command": "run $PORT"})
	long := strings.Repeat("a", 64)
	type want struct {
		code      string // "" means accepted
		commandID string // for a rejection
		cmd       events.Command
	}
	for _, tc := range []struct {
		name        string
		subject     string
		msgID       string
		contentType string // "-" means no header
		data        []byte
		want        want
	}{
		{"msgpack deploy without content type", "revline.commands.web.deploy", id, "-", deployMsgpack,
			want{cmd: events.Deploy{Command: "run $PORT"}}},
		{"msgpack deploy", "revline.commands.web.deploy", id, events.ContentTypeMsgpack, deployMsgpack,
			want{cmd: events.Deploy{Command: "run $PORT"}}},
		{"json scale", "revline.commands.web.scale", id, events.ContentTypeJSON, []byte(`{"runtime":{"min_concurrency":2}}`),
			want{cmd: events.Scale{Runtime: events.RuntimeOverrides{MinConcurrency: ptr(2)}}}},
		{"json null leaves the default", "revline.commands.web.scale", id, events.ContentTypeJSON, []byte(`{"runtime":{"min_concurrency":null}}`),
			want{cmd: events.Scale{}}},
		{"empty msgpack body for suspend", "revline.commands.web.suspend", id, "-", nil,
			want{cmd: events.Suspend{}}},
		{"empty JSON body for suspend", "revline.commands.web.suspend", id, events.ContentTypeJSON, nil,
			want{cmd: events.Suspend{}}},
		{"empty map for resume", "revline.commands.web.resume", id, "-", []byte{0x80},
			want{cmd: events.Resume{}}},
		{"urn spelling of the id is kept verbatim", "revline.commands.web.resume", "urn:uuid:" + id, "-", []byte{0x80},
			want{cmd: events.Resume{}}},

		{"missing command id", "revline.commands.web.deploy", "", "-", deployMsgpack,
			want{code: events.CodeMissingCommandID}},
		{"command id not a UUID", "revline.commands.web.deploy", "not-a-uuid", "-", deployMsgpack,
			want{code: events.CodeMissingCommandID}},
		{"subject without command", "revline.commands.web", id, "-", deployMsgpack,
			want{code: events.CodeMalformedCommand, commandID: id}},
		{"subject outside the command tree", "revline.events.web.deploy", id, "-", deployMsgpack,
			want{code: events.CodeMalformedCommand, commandID: id}},
		{"empty subject", "", id, "-", deployMsgpack,
			want{code: events.CodeMalformedCommand, commandID: id}},
		{"upper-case app", "revline.commands.Web.deploy", id, "-", deployMsgpack,
			want{code: events.CodeInvalidAppName, commandID: id}},
		{"64-character app", "revline.commands." + long + ".deploy", id, "-", deployMsgpack,
			want{code: events.CodeInvalidAppName, commandID: id}},
		{"empty app token", "revline.commands..deploy", id, "-", deployMsgpack,
			want{code: events.CodeInvalidAppName, commandID: id}},
		{"wildcard app token", "revline.commands.*.deploy", id, "-", deployMsgpack,
			want{code: events.CodeInvalidAppName, commandID: id}},
		{"unknown command", "revline.commands.web.explode", id, "-", deployMsgpack,
			want{code: events.CodeUnknownCommand, commandID: id}},
		{"command name with a dot", "revline.commands.a.b.deploy", id, "-", deployMsgpack,
			want{code: events.CodeUnknownCommand, commandID: id}},
		{"unknown msgpack field", "revline.commands.web.deploy", id, "-", mustMsgpack(t, map[string]any{"command": "x", "comand": "y"}),
			want{code: events.CodeMalformedCommand, commandID: id}},
		{"unknown JSON field", "revline.commands.web.deploy", id, events.ContentTypeJSON, []byte(`{"command":"x","comand":"y"}`),
			want{code: events.CodeMalformedCommand, commandID: id}},
		{"unknown nested JSON field", "revline.commands.web.scale", id, events.ContentTypeJSON, []byte(`{"runtime":{"min_concurency":2}}`),
			want{code: events.CodeMalformedCommand, commandID: id}},
		{"trailing msgpack data", "revline.commands.web.deploy", id, "-", append(slices.Clone(deployMsgpack), 0x01),
			want{code: events.CodeMalformedCommand, commandID: id}},
		{"trailing JSON value", "revline.commands.web.deploy", id, events.ContentTypeJSON, []byte(`{"command":"x"} {}`),
			want{code: events.CodeMalformedCommand, commandID: id}},
		{"trailing JSON garbage", "revline.commands.web.deploy", id, events.ContentTypeJSON, []byte(`{"command":"x"}garbage`),
			want{code: events.CodeMalformedCommand, commandID: id}},
		{"trailing JSON close brace", "revline.commands.web.deploy", id, events.ContentTypeJSON, []byte(`{"command":"x"}}`),
			want{code: events.CodeMalformedCommand, commandID: id}},
		{"trailing JSON close bracket", "revline.commands.web.deploy", id, events.ContentTypeJSON, []byte(`{"command":"x"}]`),
			want{code: events.CodeMalformedCommand, commandID: id}},
		{"float for an int in JSON", "revline.commands.web.scale", id, events.ContentTypeJSON, []byte(`{"runtime":{"min_concurrency":2.0}}`),
			want{code: events.CodeMalformedCommand, commandID: id}},
		{"JSON body sent as msgpack", "revline.commands.web.deploy", id, "-", []byte(`{"command":"x"}`),
			want{code: events.CodeMalformedCommand, commandID: id}},
		{"not a map", "revline.commands.web.deploy", id, "-", mustMsgpack(t, []int{1, 2}),
			want{code: events.CodeMalformedCommand, commandID: id}},
		{"unsupported content type", "revline.commands.web.deploy", id, "text/plain", []byte("command=x"),
			want{code: events.CodeMalformedCommand, commandID: id}},
		{"unsupported content type with empty body", "revline.commands.web.suspend", id, "application/yaml", nil,
			want{code: events.CodeMalformedCommand, commandID: id}},
		// A body lost on the way must not become a command with every
		// field at its default: an empty rollout would recycle every runner.
		{"empty msgpack body for rollout", "revline.commands.web.rollout", id, "-", nil,
			want{code: events.CodeMalformedCommand, commandID: id}},
		{"empty JSON body for scale", "revline.commands.web.scale", id, events.ContentTypeJSON, nil,
			want{code: events.CodeMalformedCommand, commandID: id}},
		{"empty body for deploy", "revline.commands.web.deploy", id, "-", []byte{},
			want{code: events.CodeMalformedCommand, commandID: id}},
		{"empty map for rollout is a graceful rollout", "revline.commands.web.rollout", id, events.ContentTypeJSON, []byte(`{}`),
			want{cmd: events.Rollout{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := nats.Header{}
			if tc.msgID != "" {
				h.Set(events.HeaderMsgID, tc.msgID)
			}
			if tc.contentType != "-" {
				h.Set(events.HeaderContentType, tc.contentType)
			}
			h.Set(events.HeaderActor, "alice")
			got, err := reg.DecodeCommandMsg(tc.subject, h, tc.data)
			if tc.want.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				wantCT := tc.contentType
				if wantCT == "-" {
					wantCT = events.ContentTypeMsgpack
				}
				if got.CommandID != tc.msgID || got.App != "web" || got.Actor != "alice" || got.ContentType != wantCT {
					t.Errorf("envelope %+v", got)
				}
				if got.Type != tc.want.cmd.CommandType() || !reflect.DeepEqual(got.Command, tc.want.cmd) {
					t.Errorf("command %s %#v, want %#v", got.Type, got.Command, tc.want.cmd)
				}
				return
			}
			var malformed *events.MalformedCommandError
			if !errors.As(err, &malformed) {
				t.Fatalf("err = %v (envelope %+v), want *MalformedCommandError %s", err, got, tc.want.code)
			}
			if malformed.Code != tc.want.code || malformed.CommandID != tc.want.commandID {
				t.Errorf("code %q command id %q, want %q and %q (%v)", malformed.Code, malformed.CommandID, tc.want.code, tc.want.commandID, err)
			}
			if malformed.Error() == "" || errors.Unwrap(malformed) == nil {
				t.Error("error has no message or no cause")
			}
			if !reflect.DeepEqual(got, events.CommandEnvelope{}) {
				t.Errorf("refused command still returned %+v", got)
			}
		})
	}
}

func TestValidateAppName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		valid bool
	}{
		{"a", true},
		{"my-model", true},
		{"a_1", true},
		{"0day", true},
		{strings.Repeat("a", 63), true},
		{"", false},
		{"A", false},
		{"My-model", false},
		{"-a", false},
		{"_a", false},
		{"a.b", false},
		{"*", false},
		{">", false},
		{"a b", false},
		{"a\tb", false},
		{strings.Repeat("a", 64), false},
		{"modèle", false},
		{"모델", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := events.ValidateAppName(tc.name)
			if tc.valid {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var invalid *events.InvalidNameError
			if !errors.As(err, &invalid) || invalid.Kind != "app" || invalid.Name != tc.name {
				t.Fatalf("err = %v, want *InvalidNameError for app %q", err, tc.name)
			}
			if !strings.Contains(err.Error(), "invalid app name") {
				t.Errorf("message %q does not say invalid app name", err)
			}
		})
	}
}

func TestParseSeconds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text string
		want events.Seconds
		ok   bool
	}{
		{"300", 300, true},
		{"0", 0, true},
		{" 60 ", 60, true},
		{"300s", 300, true},
		{"5m", 300, true},
		{"1h30m", 5400, true},
		{"-1", 0, false},
		{"1.5s", 0, false},
		{"1500ms", 0, false},
		{"abc", 0, false},
		{"-5m", 0, false},
		{"", 0, false},
	} {
		t.Run(tc.text, func(t *testing.T) {
			t.Parallel()
			got, err := events.ParseSeconds(tc.text)
			if tc.ok != (err == nil) || got != tc.want {
				t.Fatalf("ParseSeconds(%q) = %d, %v; want %d, ok=%v", tc.text, got, err, tc.want, tc.ok)
			}
			if tc.ok && got.Duration() != time.Duration(tc.want)*time.Second {
				t.Errorf("Duration() = %v", got.Duration())
			}
		})
	}
}

func TestParseStrategyAndRunnerState(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]events.Strategy{"": events.StrategyRolling, "rolling": events.StrategyRolling, "recreate": events.StrategyRecreate} {
		if got, err := events.ParseStrategy(in); err != nil || got != want {
			t.Errorf("ParseStrategy(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := events.ParseStrategy("blue-green"); err == nil {
		t.Error("ParseStrategy accepted blue-green")
	}
	if got, err := events.ParseRunnerState("crash_backoff"); err != nil || got != events.RunnerCrashBackoff {
		t.Errorf("ParseRunnerState(crash_backoff) = %q, %v", got, err)
	}
	if _, err := events.ParseRunnerState("sleeping"); err == nil {
		t.Error("ParseRunnerState accepted sleeping")
	}
}

func TestOutcomeMsgUsesTheCommandsEncoding(t *testing.T) {
	t.Parallel()
	o := events.Outcome{
		CommandID: uuid.NewString(), App: "web", CommandType: events.CmdDeploy, Status: events.OutcomeAccepted,
		FirstSequence: 3, LastSequence: 4, RevisionID: revisionID,
	}
	for _, tc := range []struct {
		contentType, want string
	}{
		{events.ContentTypeJSON, events.ContentTypeJSON},
		{events.ContentTypeMsgpack, events.ContentTypeMsgpack},
		{"", events.ContentTypeMsgpack},
		{"text/plain", events.ContentTypeMsgpack},
		{"application/yaml", events.ContentTypeMsgpack},
	} {
		t.Run(tc.contentType, func(t *testing.T) {
			t.Parallel()
			msg, err := events.OutcomeMsg(o, "ci-bot", tc.contentType)
			if err != nil {
				t.Fatal(err)
			}
			if got := msg.Header.Get(events.HeaderContentType); got != tc.want {
				t.Errorf("content type %q, want %q", got, tc.want)
			}
			if msg.Subject != events.OutcomeSubject("ci-bot", o.CommandID) {
				t.Errorf("subject %q", msg.Subject)
			}
			if tc.want == events.ContentTypeJSON && !json.Valid(msg.Data) {
				t.Errorf("payload is not JSON: %q", msg.Data)
			}
			got, err := events.DecodeOutcome(msg.Header, msg.Data)
			if err != nil {
				t.Fatal(err)
			}
			if got != o {
				t.Fatalf("decoded %+v, want %+v", got, o)
			}
		})
	}
}

func TestOutcomeErrIsARejectionOnlyWhenRejected(t *testing.T) {
	t.Parallel()
	for _, status := range []events.OutcomeStatus{events.OutcomeAccepted, events.OutcomeNoOp} {
		if err := (events.Outcome{Status: status, Code: "x"}).Err(); err != nil {
			t.Errorf("%s outcome: Err() = %v", status, err)
		}
	}
	err := events.Outcome{Status: events.OutcomeRejected, Code: "app_suspended", Message: "app web is suspended"}.Err()
	var rej *events.Rejection
	if !errors.As(err, &rej) || rej.Code != "app_suspended" || err.Error() != "app web is suspended" {
		t.Fatalf("Err() = %v", err)
	}
}

func FuzzDecodeCommandMsg(f *testing.F) {
	id := uuid.NewString()
	deploy, err := msgpack.Marshal(events.Deploy{Command: "run $PORT", Annotations: map[string]string{"k": "v"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("revline.commands.web.deploy", id, events.ContentTypeMsgpack, deploy)
	f.Add("revline.commands.web.deploy", id, events.ContentTypeJSON, []byte(`{"command":"run $PORT","runtime":{"min_concurrency":1}}`))
	f.Add("revline.commands.web.suspend", id, "", []byte{})
	f.Add("revline.commands.web.report_runner", id, "", []byte{0x81, 0xa5, 's', 't', 'a', 't', 'e', 0xa4, 'i', 'd', 'l', 'e'})
	f.Add("revline.commands.Web.deploy", id, "", deploy)
	f.Add("revline.commands..deploy", id, "", deploy)
	f.Add("revline.commands.a.b.deploy", id, "", deploy)
	f.Add("revline.commands.web", "", "", []byte{0xc1})
	f.Add("revline.commands.web.deploy", "not-a-uuid", "text/plain", []byte("garbage"))
	f.Add("revline.commands.web.scale", id, events.ContentTypeJSON, []byte(`{"runtime":{"min_concurrency":2.0}}}`))
	f.Add("revline.commands.web.deploy", id, "", []byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add("revline.commands.*.>", id, "", []byte{0x80, 0x80})
	reg := events.NewRegistry()
	f.Fuzz(func(t *testing.T, subject, msgID, contentType string, data []byte) {
		h := nats.Header{}
		h.Set(events.HeaderMsgID, msgID)
		if contentType != "" {
			h.Set(events.HeaderContentType, contentType)
		}
		env, err := reg.DecodeCommandMsg(subject, h, data)
		if err != nil {
			var malformed *events.MalformedCommandError
			if !errors.As(err, &malformed) {
				t.Fatalf("error %v is not a *MalformedCommandError", err)
			}
			return
		}
		if verr := events.ValidateAppName(env.App); verr != nil {
			t.Fatalf("accepted a command for app %q: %v", env.App, verr)
		}
		if env.Command == nil || env.Command.CommandType() != env.Type {
			t.Fatalf("accepted command %T for type %q", env.Command, env.Type)
		}
		if _, err := uuid.Parse(env.CommandID); err != nil {
			t.Fatalf("accepted command id %q: %v", env.CommandID, err)
		}
	})
}

// An event written by a newer version, with a field this one does not
// know, still reads: events are facts, and refusing one would make the
// app's whole history unreadable after a rollback of the binary. A command
// with an unknown field is refused: it is a misspelt parameter.
func TestEventsSkipUnknownFieldsCommandsRefuseThem(t *testing.T) {
	t.Parallel()
	payload, err := msgpack.Marshal(map[string]any{"revision_id": "r1", "reason": "boom", "added_later": 7})
	if err != nil {
		t.Fatal(err)
	}
	r := events.NewRegistry()
	ev, err := r.DecodeEvent(events.TypeRevisionFailed, payload)
	if err != nil || ev.(events.RevisionFailed).Reason != "boom" {
		t.Fatalf("event with an added field: %+v, %v", ev, err)
	}
	if _, err := r.DecodeCommand(events.CmdFailDeploy, "", payload); err == nil {
		t.Fatal("a command with an unknown field was accepted")
	}
}

// A revision.deployed written before rolled_back_to existed is a deploy
// that made its revision current: it reads with the field empty, at the
// same schema version.
func TestRevisionDeployedWithoutRolledBackToReadsAsMadeCurrent(t *testing.T) {
	t.Parallel()
	payload, err := msgpack.Marshal(map[string]any{"revision_id": "r1"})
	if err != nil {
		t.Fatal(err)
	}
	r := events.NewRegistry()
	ev, err := r.DecodeEvent(events.TypeRevisionDeployed, payload)
	if err != nil || ev != (events.RevisionDeployed{RevisionID: "r1"}) {
		t.Fatalf("old revision.deployed: %+v, %v", ev, err)
	}
	if v := r.EventVersion(events.TypeRevisionDeployed); v != events.SchemaVersion {
		t.Fatalf("revision.deployed is read at version %d, want %d: an optional field needs no upcaster", v, events.SchemaVersion)
	}
	data, err := events.Marshal(events.ContentTypeMsgpack, events.RevisionDeployed{RevisionID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, payload) {
		t.Fatalf("a deploy made current encodes as %x, want the old form %x", data, payload)
	}
}
