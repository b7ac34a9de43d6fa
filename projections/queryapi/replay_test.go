package queryapi_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/queryapi"
)

// Replay requests over NATS: the report of a replay, and each refusal as
// an *Error with its code.
func TestReplayRequests(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv := embeddedtest.Start(t)
	nc, js := embeddedtest.Connect(t, srv)
	store, err := events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]uint64{}
	for _, env := range history() {
		env.Sequence = 0
		res, err := store.Append(ctx, env.App, versions[env.App], []events.Envelope{env})
		if err != nil {
			t.Fatal(err)
		}
		versions[env.App] = res.LastSequence
	}
	model, err := projections.Rebuild(ctx, store, uint64(len(history())))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	sub, err := queryapi.ServeReplay(ctx, nc, queryapi.NewReplayer(store, model, logger), anyone, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	report, err := queryapi.AskReplay(ctx, nc, nil, queryapi.ReplayRequest{})
	if err != nil || !report.Switched || report.Generation != 2 || report.EventsRead != uint64(len(history())) || !report.Differences.None() {
		t.Errorf("replay: %+v, %v; want generation 2 from every event, no difference", report, err)
	}
	report, err = queryapi.AskReplay(ctx, nc, nil, queryapi.ReplayRequest{ToSequence: 3})
	if err != nil || report.Switched || report.Generation != 2 || report.ToSequence != 3 || report.Differences.Apps.Added != 1 {
		t.Errorf("replay to sequence 3: %+v, %v; want generation 2 kept and api added since", report, err)
	}
	var qerr *queryapi.Error
	if _, err := queryapi.AskReplay(ctx, nc, nil, queryapi.ReplayRequest{ToSequence: 1000}); !errors.As(err, &qerr) || qerr.Code != queryapi.CodeBeyondLog {
		t.Errorf("replay past the log's end: %v, want code %s", err, queryapi.CodeBeyondLog)
	}
	if msg, err := nc.RequestWithContext(ctx, queryapi.SubjectReplay, []byte("{not json")); err != nil {
		t.Errorf("a request that is not JSON: %v", err)
	} else if !strings.Contains(string(msg.Data), `"code":"`+queryapi.CodeBadRequest+`"`) {
		t.Errorf("a request that is not JSON: %s; want code %s", msg.Data, queryapi.CodeBadRequest)
	}

	// A request its authorizer refuses gets the refusal, and no replay.
	refusing, err := queryapi.ServeReplay(ctx, nc, func(context.Context, queryapi.ReplayRequest) (projections.ReplayReport, error) {
		t.Error("a refused request was replayed")
		return projections.ReplayReport{}, nil
	}, func(context.Context, *nats.Msg) (string, error) {
		return "", &events.Rejection{Code: events.CodeForbidden, Message: "token ops has role operator; this needs admin"}
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	_ = sub.Unsubscribe() // only the refusing one answers now
	if _, err := queryapi.AskReplay(ctx, nc, nil, queryapi.ReplayRequest{}); !errors.As(err, &qerr) || qerr.Code != events.CodeForbidden || !strings.Contains(qerr.Message, "needs admin") {
		t.Errorf("a refused replay request: %v, want code %s", err, events.CodeForbidden)
	}
	_ = refusing.Unsubscribe()

	// A replay that fails for a reason of its own is reported as internal.
	failing, err := queryapi.ServeReplay(ctx, nc, func(context.Context, queryapi.ReplayRequest) (projections.ReplayReport, error) {
		return projections.ReplayReport{}, errors.New("the log is gone")
	}, anyone, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = failing.Unsubscribe() }()
	if _, err := queryapi.AskReplay(ctx, nc, nil, queryapi.ReplayRequest{}); !errors.As(err, &qerr) || qerr.Code != queryapi.CodeInternal || qerr.Message != "the log is gone" {
		t.Errorf("a failed replay: %v, want code %s", err, queryapi.CodeInternal)
	}
}

// anyone is a queryapi.RequestAuthorizer that lets every request through.
func anyone(context.Context, *nats.Msg) (string, error) { return "test", nil }
