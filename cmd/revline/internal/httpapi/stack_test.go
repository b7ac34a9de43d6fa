package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/cmd/revline/internal/httpapi"
	"github.com/revline/revline/cmd/revline/internal/metrics"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/events/embedded/embeddedtest"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/queryapi"
	"github.com/revline/revline/workers/processor"
	"github.com/revline/revline/workers/webhooks"
)

// stack is a whole Revline server but the runner worker: an embedded
// nats-server, the command processor, the revision-history projection
// and the HTTP API in front of them. The tests play the runner worker by
// sending its commands themselves.
type stack struct {
	url    string
	client *commandbus.Client
	store  *events.JetStreamStore
	model  *projections.RevisionHistory
	// observed receives a value each time the metrics saw an outcome.
	observed chan struct{}
	handler  httpapi.Handler
	tokens   *auth.Store
	// admin is the value of the admin token named "test" that do sends
	// unless told otherwise.
	admin string
}

// newStack starts a stack that lives until the test ends; configure may
// adjust the API's config.
func newStack(t *testing.T, configure ...func(*httpapi.Config)) *stack {
	t.Helper()
	srv := embeddedtest.Start(t)
	_, js := embeddedtest.Connect(t, srv)
	ctx := testContext(t)
	if err := commandbus.EnsureStreams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	store, err := events.NewJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{client: commandbus.NewClient(js), store: store, model: projections.NewRevisionHistory(), observed: make(chan struct{}, 1024)}
	m, err := metrics.New(s.model)
	if err != nil {
		t.Fatal(err)
	}
	proc, err := processor.New(processor.Config{Verifier: testsupport.TrustActor{},
		NATSURL:   srv.ClientURL(),
		JetStream: js,
		Store:     store,
		OnOutcome: func(p processor.OutcomeParams) {
			m.ObserveOutcome(p)
			select {
			case s.observed <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	runCtx, cancel := context.WithCancel(context.Background())
	procDone, modelDone := make(chan error, 1), make(chan error, 1)
	go func() { procDone <- proc.Run(runCtx) }()
	go func() { modelDone <- projections.Run(runCtx, store, s.model) }()
	t.Cleanup(func() {
		cancel()
		// A processor stopped before its consumer was set up returns the
		// cancellation; it did nothing wrong.
		if err := <-procDone; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("processor stopped with %v", err)
		}
		if err := <-modelDone; !errors.Is(err, context.Canceled) {
			t.Errorf("projection stopped with %v", err)
		}
	})

	if s.tokens, err = auth.Ensure(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	s.admin = s.token(t, "test", auth.RoleAdmin, "")

	hooks, err := webhooks.Ensure(ctx, js, 1, webhooks.Policy{})
	if err != nil {
		t.Fatal(err)
	}

	local := queryapi.Local{Model: s.model}
	cfg := httpapi.Config{
		Webhooks: hooks,
		Control:  &control.Control{Commands: s.client, Reader: local, Events: store, Actor: "unauthenticated"},
		Tokens:   s.tokens,
		Reader:   local,
		Audit:    store,
		Replay:   queryapi.NewReplayer(store, s.model, slog.New(slog.DiscardHandler)),
		Metrics:  m.Handler(),
	}
	for _, f := range configure {
		f(&cfg)
	}
	h, err := httpapi.NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.handler = h
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	s.url = hs.URL
	return s
}

// token creates a token and returns its value.
func (s *stack) token(t *testing.T, name string, role auth.Role, apps string) string {
	t.Helper()
	value, _, err := s.tokens.Create(testContext(t), auth.NewToken{Name: name, Role: role, Apps: apps, CreatedBy: "test"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return value
}

// as returns the headers that authenticate a request with a new operator
// token named name, for do.
func (s *stack) as(t *testing.T, name string) []string {
	return []string{"Authorization", "Bearer " + s.token(t, name, auth.RoleOperator, "")}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// response is one HTTP answer, body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request. body is sent as is when it is a string, encoded as
// JSON otherwise, and left out when nil. headers are name, value pairs;
// without an Authorization header, the request carries the admin token.
func (s *stack) do(t *testing.T, method, path string, body any, headers ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(testContext(t), method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+s.admin)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// ok decodes a JSON answer with the wanted status into a T.
func ok[T any](t *testing.T, r response, status int) T {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, r.body, err)
	}
	return v
}

// problem checks r is a problem document with the wanted status and code.
func problem(t *testing.T, r response, status int, code string) httpapi.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != httpapi.ProblemContentType {
		t.Fatalf("Content-Type = %q, want %s; status %d, body: %s", ct, httpapi.ProblemContentType, r.status, r.body)
	}
	var p httpapi.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("decode problem from %s: %v", r.body, err)
	}
	if r.status != status || p.Status != status || p.Code != code {
		t.Fatalf("status %d, problem %+v; want status %d, code %s", r.status, p, status, code)
	}
	if p.Type != httpapi.ProblemTypeBase+code || p.Title == "" || p.Detail == "" || strings.Contains(p.Detail, "\n") {
		t.Fatalf("problem %+v: want type %s, a title and a one-line detail", p, httpapi.ProblemTypeBase+code)
	}
	return p
}

// worker is the actor of the commands the tests send as the runner worker.
var worker = events.Metadata{Actor: "worker:runner"}

// execute sends cmd as the runner worker, checks it was accepted and waits
// for the read model to reflect it.
func (s *stack) execute(t *testing.T, app string, cmd events.Command) events.Outcome {
	t.Helper()
	ctx := testContext(t)
	o, err := s.client.Execute(ctx, events.NewCommand(app, cmd, worker))
	if err != nil {
		t.Fatalf("execute %s: %v", cmd.CommandType(), err)
	}
	if o.Status != events.OutcomeAccepted {
		t.Fatalf("%s outcome = %+v", cmd.CommandType(), o)
	}
	if err := s.model.WaitFor(ctx, o.LastSequence); err != nil {
		t.Fatal(err)
	}
	return o
}

// deployStarted deploys without waiting and returns the result.
func (s *stack) deployStarted(t *testing.T, app string, body map[string]any) control.DeployResult {
	t.Helper()
	b := map[string]any{"command": "python3 -m http.server $PORT"}
	for k, v := range body {
		b[k] = v
	}
	return ok[control.DeployResult](t, s.do(t, "POST", "/v1/apps/"+app+"/deploy", b), http.StatusAccepted)
}

// deployed deploys a revision and completes it as the runner worker, so
// that it becomes current; it returns the revision id.
func (s *stack) deployed(t *testing.T, app string, body map[string]any) string {
	t.Helper()
	res := s.deployStarted(t, app, body)
	s.execute(t, app, events.CompleteDeploy{RevisionID: res.RevisionID})
	return res.RevisionID
}

// settleNextDeploy plays the runner worker for the next revision the app
// creates: it completes it, or fails it with failReason. The channel gets
// the outcome of that command.
func (s *stack) settleNextDeploy(t *testing.T, app, failReason string) <-chan error {
	return s.onEvent(t, app, func(ev events.Event) (events.Command, bool) {
		created, ok := ev.(events.RevisionCreated)
		if !ok {
			return nil, false
		}
		if failReason != "" {
			return events.FailDeploy{RevisionID: created.RevisionID, Reason: failReason}, true
		}
		return events.CompleteDeploy{RevisionID: created.RevisionID}, true
	})
}

// completeNextRollout plays the runner worker for the next rollout the app
// requests, reporting replaced runners.
func (s *stack) completeNextRollout(t *testing.T, app string, replaced int) <-chan error {
	return s.onEvent(t, app, func(ev events.Event) (events.Command, bool) {
		requested, ok := ev.(events.RolloutRequested)
		if !ok {
			return nil, false
		}
		return events.CompleteRollout{RolloutID: requested.RolloutID, Replaced: replaced}, true
	})
}

var errAnswered = errors.New("answered")

// onEvent follows the app's events after those the model has applied
// and, at the first one react turns into a command, sends it as the
// runner worker.
func (s *stack) onEvent(t *testing.T, app string, react func(events.Event) (events.Command, bool)) <-chan error {
	ctx := testContext(t)
	from := s.model.Checkpoint() + 1
	done := make(chan error, 1)
	go func() {
		err := s.store.FollowApp(ctx, app, from, func(env events.Envelope, decodeErr error) error {
			if decodeErr != nil {
				return decodeErr
			}
			cmd, ok := react(env.Event)
			if !ok {
				return nil
			}
			o, err := s.client.Execute(ctx, events.NewCommand(app, cmd, worker))
			if err != nil {
				return err
			}
			if o.Status != events.OutcomeAccepted {
				return fmt.Errorf("%s outcome = %+v", cmd.CommandType(), o)
			}
			return errAnswered
		})
		if errors.Is(err, errAnswered) {
			err = nil
		} else if err == nil {
			err = errors.New("follow ended before the awaited event")
		}
		done <- err
	}()
	return done
}

// await waits for the runner worker played by onEvent.
func await(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-testContext(t).Done():
		t.Fatal("the runner worker stand-in did not answer")
	}
}
