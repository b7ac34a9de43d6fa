package queryapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
)

// Client is a Reader that asks a Revline server over NATS.
type Client struct {
	nc     *nats.Conn
	signer *events.Signer
}

var (
	_ Reader    = (*Client)(nil)
	_ LogReader = (*Client)(nil)
)

// ClientOption configures a Client.
type ClientOption func(*Client)

// SignedBy signs every query with s (events.Signer.SignedRequest):
// `revline serve` answers a query only about the apps its token may view,
// and an unsigned one not at all (CodeUnauthenticated), but for the
// version.
func SignedBy(s *events.Signer) ClientOption {
	return func(c *Client) { c.signer = s }
}

// NewClient returns a Client on nc.
func NewClient(nc *nats.Conn, opts ...ClientOption) *Client {
	c := &Client{nc: nc}
	for _, opt := range opts {
		opt(c)
	}
	return c
}

func ask[T any](ctx context.Context, c *Client, endpoint string, q Request) (T, error) {
	var out T
	body, err := json.Marshal(q)
	if err != nil {
		return out, fmt.Errorf("query %s: %w", endpoint, err)
	}
	req, err := c.signer.SignedRequest(SubjectPrefix+endpoint, body)
	if err != nil {
		return out, fmt.Errorf("query %s: %w", endpoint, err)
	}
	msg, err := c.nc.RequestMsgWithContext(ctx, req)
	if errors.Is(err, nats.ErrNoResponders) {
		if endpoint == EndpointRunnerLogs {
			return out, &Error{Code: CodeRunnerLogsUnavailable, Message: "no Revline server that runs runners answers on this NATS: runner logs are read on the `revline serve` that runs the runners (is it running? a --no-runners replica has none)"}
		}
		return out, fmt.Errorf("query %s: no Revline server answers on this NATS (is `revline serve` running?)", endpoint)
	}
	if err != nil {
		return out, fmt.Errorf("query %s: %w", endpoint, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		return out, &Error{Code: code, Message: msg.Header.Get(micro.ErrorHeader)}
	}
	if err := json.Unmarshal(msg.Data, &out); err != nil {
		return out, fmt.Errorf("query %s: bad answer: %w", endpoint, err)
	}
	return out, nil
}

// Apps implements Reader.
func (c *Client) Apps(ctx context.Context, page PageRequest, seq uint64) (Page[projections.AppView], error) {
	return ask[Page[projections.AppView]](ctx, c, EndpointApps, Request{Limit: page.Limit, PageToken: page.PageToken, MinSequence: seq})
}

// Revisions implements Reader.
func (c *Client) Revisions(ctx context.Context, app string, page PageRequest, seq uint64) (Page[projections.RevisionView], error) {
	return ask[Page[projections.RevisionView]](ctx, c, EndpointRevisions, Request{App: app, Limit: page.Limit, PageToken: page.PageToken, MinSequence: seq})
}

// Revision implements Reader.
func (c *Client) Revision(ctx context.Context, app, ref string, seq uint64) (projections.RevisionView, error) {
	return ask[projections.RevisionView](ctx, c, EndpointRevision, Request{App: app, Ref: ref, MinSequence: seq})
}

// Runners implements Reader.
func (c *Client) Runners(ctx context.Context, app string, filter RunnerFilter, page PageRequest, seq uint64) (Page[projections.RunnerView], error) {
	return ask[Page[projections.RunnerView]](ctx, c, EndpointRunners, Request{
		App: app, All: filter.All, State: string(filter.State), Limit: page.Limit, PageToken: page.PageToken, MinSequence: seq,
	})
}

// Rollout implements Reader.
func (c *Client) Rollout(ctx context.Context, app, id string, seq uint64) (projections.RolloutView, error) {
	return ask[projections.RolloutView](ctx, c, EndpointRollout, Request{App: app, RolloutID: id, MinSequence: seq})
}

// ServerVersion asks the version of a server that answers queries.
func (c *Client) ServerVersion(ctx context.Context) (ServerVersion, error) {
	return ask[ServerVersion](ctx, c, EndpointVersion, Request{})
}

// RunnerLogs implements LogReader. Only the server that runs the runners
// answers; req.MaxBytes is that server's to decide.
func (c *Client) RunnerLogs(ctx context.Context, app, runnerID string, req LogRequest, seq uint64) (LogPage, error) {
	tail := req.Tail
	return ask[LogPage](ctx, c, EndpointRunnerLogs, Request{App: app, RunnerID: runnerID, Tail: &tail, AfterOffset: req.AfterOffset, MinSequence: seq})
}
