package queryapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/revline/revline/events"
)

// ServeOption configures Serve.
type ServeOption func(*service)

// WithLogger makes Serve log to l (default slog.Default()): replies it
// could not send, and answers too large for one message.
func WithLogger(l *slog.Logger) ServeOption {
	return func(s *service) {
		if l != nil {
			s.log = l
		}
	}
}

// QueryAuthorizer says who sent a query (msg, as it arrived: subject,
// headers and body): it returns whether the sender may view an app (nil,
// or an *events.Rejection with code CodeForbidden that says why not), or
// an *events.Rejection with code CodeUnauthenticated that refuses the
// query; another error is transient.
type QueryAuthorizer func(ctx context.Context, msg *nats.Msg) (mayView func(app string) error, err error)

// WithAuthorizer makes Serve answer a query only once authorize has said
// who sent it, and only about the apps that sender may view: a query about
// another app is CodeForbidden, and the apps list holds only the apps it
// may view. The version query stays open. Without it every query is
// answered.
func WithAuthorizer(authorize QueryAuthorizer) ServeOption {
	return func(s *service) { s.authorize = authorize }
}

// authorizeTimeout bounds how long a query's authorization (a read of the
// token store) may take.
const authorizeTimeout = 10 * time.Second

// service answers the query endpoints.
type service struct {
	// maxPayload is the most bytes one message may carry on the
	// connection, which can change on a reconnect to another server.
	maxPayload func() int64
	log        *slog.Logger
	// logs, if set, answers EndpointRunnerLogs (WithRunnerLogs).
	logs LogReader
	// authorize, if set, says who sent each query (WithAuthorizer).
	authorize QueryAuthorizer
}

// answerFunc answers one query; maxBytes bounds a list page's encoding.
type answerFunc func(ctx context.Context, q Request, maxBytes int) (any, error)

// Serve registers the query endpoints on nc as the NATS micro service
// "revline-query", answering from r. Stop the returned service to stop.
//
// Every request gets an answer or a micro error (headers
// Nats-Service-Error-Code and Nats-Service-Error) at once: list pages and
// runner log pages are cut to fit nc's max payload, and an answer that
// cannot fit (a single revision larger than that) is a CodeReplyTooLarge
// error. Runner log queries are answered only with WithRunnerLogs.
func Serve(nc *nats.Conn, r Reader, version string, opts ...ServeOption) (micro.Service, error) {
	s := &service{maxPayload: nc.MaxPayload, log: slog.Default()}
	for _, opt := range opts {
		opt(s)
	}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        "revline-query",
		Version:     version,
		Description: "Revline read models: apps, revisions, runners, rollouts; runner logs where the runners run",
	})
	if err != nil {
		return nil, fmt.Errorf("query service: %w", err)
	}
	group := svc.AddGroup(SubjectPrefix[:len(SubjectPrefix)-1])
	withMax := func(q Request, maxBytes int) PageRequest {
		p := q.page()
		p.MaxBytes = maxBytes
		return p
	}
	endpoints := map[string]answerFunc{
		EndpointApps: func(ctx context.Context, q Request, maxBytes int) (any, error) {
			return r.Apps(ctx, withMax(q, maxBytes), q.MinSequence)
		},
		EndpointRevisions: func(ctx context.Context, q Request, maxBytes int) (any, error) {
			return r.Revisions(ctx, q.App, withMax(q, maxBytes), q.MinSequence)
		},
		EndpointRevision: func(ctx context.Context, q Request, _ int) (any, error) {
			return r.Revision(ctx, q.App, q.Ref, q.MinSequence)
		},
		EndpointRunners: func(ctx context.Context, q Request, maxBytes int) (any, error) {
			filter := RunnerFilter{All: q.All, State: events.RunnerState(q.State)}
			return r.Runners(ctx, q.App, filter, withMax(q, maxBytes), q.MinSequence)
		},
		EndpointRollout: func(ctx context.Context, q Request, _ int) (any, error) {
			return r.Rollout(ctx, q.App, q.RolloutID, q.MinSequence)
		},
		EndpointVersion: func(context.Context, Request, int) (any, error) {
			return ServerVersion{Version: version}, nil
		},
	}
	if s.logs != nil {
		endpoints[EndpointRunnerLogs] = func(ctx context.Context, q Request, maxBytes int) (any, error) {
			req := LogRequest{Tail: DefaultLogTail, AfterOffset: q.AfterOffset, MaxBytes: maxBytes}
			if q.Tail != nil {
				req.Tail = *q.Tail
			}
			return s.logs.RunnerLogs(ctx, q.App, q.RunnerID, req, q.MinSequence)
		}
	}
	for name, answer := range endpoints {
		// Each request is answered on its own goroutine: micro calls an
		// endpoint's handler one request at a time, and a query waiting
		// for a min_sequence must not hold up the others. That goroutine
		// answers on the connection itself: micro reads the request's
		// state once the handler has returned, so it must not be used
		// from another goroutine.
		handler := micro.HandlerFunc(func(req micro.Request) {
			detached := detachedRequest{nc: nc, reply: req.Reply(), subject: req.Subject(), headers: maps.Clone(req.Headers()), data: slices.Clone(req.Data())}
			go s.respond(detached, name, answer)
		})
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

// replyHeadroom is kept free in every reply for what NATS adds to the
// JSON body (headers, should any be set).
const replyHeadroom = 4 << 10

// pageBudget is the most bytes of JSON a list page may take on a
// connection whose max payload is maxPayload.
func pageBudget(maxPayload int64) int {
	return int(max(maxPayload-replyHeadroom, maxPayload/2))
}

// request is what respond needs of a query: its body, and ways to answer.
// micro.Request has them; so has detachedRequest.
type request interface {
	Subject() string
	Headers() micro.Headers
	Data() []byte
	Respond(data []byte, opts ...micro.RespondOpt) error
	Error(code, description string, data []byte, opts ...micro.RespondOpt) error
}

// detachedRequest answers a query on the connection, as micro would, but
// from any goroutine.
type detachedRequest struct {
	nc      *nats.Conn
	reply   string
	subject string
	headers micro.Headers
	data    []byte
}

// Subject implements request.
func (r detachedRequest) Subject() string { return r.subject }

// Headers implements request.
func (r detachedRequest) Headers() micro.Headers { return r.headers }

// Data implements request.
func (r detachedRequest) Data() []byte { return r.data }

// Respond implements request.
func (r detachedRequest) Respond(data []byte, _ ...micro.RespondOpt) error {
	if err := r.nc.Publish(r.reply, data); err != nil {
		return fmt.Errorf("%w: %w", micro.ErrRespond, err)
	}
	return nil
}

// Error implements request: a micro error reply (its two headers).
func (r detachedRequest) Error(code, description string, data []byte, _ ...micro.RespondOpt) error {
	msg := nats.NewMsg(r.reply)
	msg.Header.Set(micro.ErrorHeader, description)
	msg.Header.Set(micro.ErrorCodeHeader, code)
	msg.Data = data
	if err := r.nc.PublishMsg(msg); err != nil {
		return fmt.Errorf("%w: %w", micro.ErrRespond, err)
	}
	return nil
}

func (s *service) respond(req request, name string, answer answerFunc) {
	var q Request
	if len(req.Data()) > 0 {
		if err := json.Unmarshal(req.Data(), &q); err != nil {
			s.fail(req, name, CodeBadRequest, "query body is not valid JSON: "+err.Error())
			return
		}
	}
	if name != EndpointApps && name != EndpointVersion {
		if err := events.ValidateAppName(q.App); err != nil {
			s.fail(req, name, CodeBadRequest, err.Error())
			return
		}
	}
	if s.authorize != nil && name != EndpointVersion {
		if code, message := s.authorized(req, name, &q); code != "" {
			s.fail(req, name, code, message)
			return
		}
	}
	maxPayload := s.maxPayload()
	result, err := answer(context.Background(), q, pageBudget(maxPayload))
	var qerr *Error
	switch {
	case errors.As(err, &qerr):
		message := qerr.Message
		if qerr.Code == CodeReplyTooLarge {
			s.log.Warn("query answer too large for one NATS message", "endpoint", name, "app", q.App, "max_payload", maxPayload, "error", message)
			message += fmt.Sprintf(" on this NATS connection (max_payload %d bytes); the HTTP API has no such limit", maxPayload)
		}
		s.fail(req, name, qerr.Code, message)
		return
	case err != nil:
		s.log.Error("query failed", "endpoint", name, "app", q.App, "error", err)
		s.fail(req, name, CodeInternal, err.Error())
		return
	}
	body, err := json.Marshal(result)
	if err != nil {
		s.log.Error("query answer does not encode", "endpoint", name, "app", q.App, "error", err)
		s.fail(req, name, CodeInternal, "the answer does not encode as JSON: "+err.Error())
		return
	}
	if int64(len(body)) > maxPayload {
		s.log.Warn("query answer too large for one NATS message", "endpoint", name, "app", q.App, "bytes", len(body), "max_payload", maxPayload)
		s.fail(req, name, CodeReplyTooLarge, fmt.Sprintf(
			"the answer is %d bytes, more than the %d bytes NATS lets the server send in one message (its max_payload); the HTTP API has no such limit",
			len(body), maxPayload))
		return
	}
	if err := req.Respond(body); err != nil {
		s.log.Error("query answer not sent", "endpoint", name, "app", q.App, "bytes", len(body), "error", err)
		code := CodeInternal
		if strings.Contains(err.Error(), nats.ErrMaxPayload.Error()) {
			code = CodeReplyTooLarge
		}
		s.fail(req, name, code, fmt.Sprintf("the server could not send its %d-byte answer: %v", len(body), err))
	}
}

// authorized checks who sent req and whether it may ask about q.App; for
// the apps list, it keeps the list to the apps the sender may view. It
// returns the code and sentence of a refusal, "" for none.
func (s *service) authorized(req request, name string, q *Request) (code, message string) {
	ctx, cancel := context.WithTimeout(context.Background(), authorizeTimeout)
	defer cancel()
	msg := &nats.Msg{Subject: req.Subject(), Header: nats.Header(req.Headers()), Data: req.Data()}
	mayView, err := s.authorize(ctx, msg)
	if err == nil && name == EndpointApps {
		q.visible = func(app string) bool { return mayView(app) == nil }
	} else if err == nil {
		err = mayView(q.App)
	}
	var rej *events.Rejection
	switch {
	case err == nil:
		return "", ""
	case errors.As(err, &rej):
		s.log.Warn("query refused", "endpoint", name, "app", q.App, "key", msg.Header.Get(events.HeaderKey), "code", rej.Code, "reason", rej.Message)
		return rej.Code, rej.Message
	default:
		s.log.Error("query not authorized", "endpoint", name, "error", err)
		return CodeInternal, "the server could not check who sent this query: " + err.Error()
	}
}

// maxErrorDescription bounds an error reply's description, which travels
// in a header.
const maxErrorDescription = 1 << 10

// fail answers req with a micro error, and logs when even that cannot be
// sent: the client then hears nothing until its own deadline.
func (s *service) fail(req request, name, code, message string) {
	if err := req.Error(code, errorDescription(message), nil); err != nil {
		s.log.Error("query error reply not sent; the client waits until its deadline", "endpoint", name, "code", code, "error", err)
	}
}

// errorDescription makes message fit a header value: one line, at most
// maxErrorDescription bytes, never empty.
func errorDescription(message string) string {
	message = strings.Join(strings.Fields(message), " ")
	if len(message) > maxErrorDescription {
		cut := maxErrorDescription - len("...")
		for cut > 0 && !utf8.RuneStart(message[cut]) {
			cut--
		}
		message = message[:cut] + "..."
	}
	if message == "" {
		message = "query failed"
	}
	return message
}
