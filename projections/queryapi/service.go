package queryapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/revline/revline/events"
)

// Serve registers the query endpoints on nc as the NATS micro service
// "revline-query", answering from r. Stop the returned service to stop.
func Serve(nc *nats.Conn, r Reader, version string) (micro.Service, error) {
	svc, err := micro.AddService(nc, micro.Config{
		Name:        "revline-query",
		Version:     version,
		Description: "Revline read models: apps, revisions, runners, rollouts",
	})
	if err != nil {
		return nil, fmt.Errorf("query service: %w", err)
	}
	group := svc.AddGroup(SubjectPrefix[:len(SubjectPrefix)-1])
	endpoints := map[string]func(context.Context, Request) (any, error){
		EndpointApps: func(ctx context.Context, q Request) (any, error) { return r.Apps(ctx, q.MinSequence) },
		EndpointRevisions: func(ctx context.Context, q Request) (any, error) {
			return r.Revisions(ctx, q.App, q.MinSequence)
		},
		EndpointRevision: func(ctx context.Context, q Request) (any, error) {
			return r.Revision(ctx, q.App, q.Ref, q.MinSequence)
		},
		EndpointRunners: func(ctx context.Context, q Request) (any, error) {
			return r.Runners(ctx, q.App, q.All, q.MinSequence)
		},
		EndpointRollout: func(ctx context.Context, q Request) (any, error) {
			return r.Rollout(ctx, q.App, q.RolloutID, q.MinSequence)
		},
	}
	for name, answer := range endpoints {
		// Each request is answered on its own goroutine: micro calls an
		// endpoint's handler one request at a time, and a query waiting
		// for a min_sequence must not hold up the others.
		handler := micro.HandlerFunc(func(req micro.Request) { go respond(req, name, answer) })
		if err := group.AddEndpoint(name, handler); err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("query service: endpoint %s: %w", name, err)
		}
	}
	// Once Serve returns, queries from any connection must be answered:
	// make sure the server has registered the endpoints' subscriptions.
	if err := nc.Flush(); err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("query service: %w", err)
	}
	return svc, nil
}

func respond(req micro.Request, name string, answer func(context.Context, Request) (any, error)) {
	var q Request
	if len(req.Data()) > 0 {
		if err := json.Unmarshal(req.Data(), &q); err != nil {
			_ = req.Error(CodeBadRequest, "query body is not valid JSON: "+err.Error(), nil)
			return
		}
	}
	if name != EndpointApps {
		if err := events.ValidateAppName(q.App); err != nil {
			_ = req.Error(CodeBadRequest, err.Error(), nil)
			return
		}
	}
	result, err := answer(context.Background(), q)
	var qerr *Error
	switch {
	case errors.As(err, &qerr):
		_ = req.Error(qerr.Code, qerr.Message, nil)
	case err != nil:
		_ = req.Error("internal", err.Error(), nil)
	default:
		_ = req.RespondJSON(result)
	}
}
