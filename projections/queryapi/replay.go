package queryapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
)

// SubjectReplay is where `revline replay` asks a server to rebuild its
// read model (ServeReplay). It is not a query: the server's own
// connection answers it, not the query service's.
const SubjectReplay = "revline.replay"

// SubjectReplayAll is where `revline replay --all` asks every server
// (every serve replica) to rebuild its read model (ServeReplayAll).
const SubjectReplayAll = "revline.replay.all"

// Error codes of a failed replay.
const (
	// CodeReplayRunning: another replay of the server's model runs.
	CodeReplayRunning = "replay_running"
	// CodeBeyondLog: the sequence to replay to is past the log's end.
	CodeBeyondLog = "beyond_log"
)

// ReplayTimeout bounds one replay on the server.
const ReplayTimeout = 10 * time.Minute

// maxReplayRequest bounds a replay request's body.
const maxReplayRequest = 1 << 10

// ReplayRequest is the body of a replay request (JSON; empty for the
// defaults).
type ReplayRequest struct {
	// ToSequence, if set, builds the model up to this stream sequence
	// and compares it with the live one without switching
	// (projections.ReplayOptions).
	ToSequence uint64 `json:"to_sequence,omitempty"`
}

// ReplayReply is the answer to a replay request: the report, or an error
// code and sentence.
type ReplayReply struct {
	Report *projections.ReplayReport `json:"report,omitempty"`
	Code   string                    `json:"code,omitempty"`
	Error  string                    `json:"error,omitempty"`
	// Server names the replica that answers a request to every server
	// (SubjectReplayAll); Started marks its first answer, sent at once,
	// which says that a report (or an error) follows.
	Server  string `json:"server,omitempty"`
	Started bool   `json:"started,omitempty"`
}

// Replayer rebuilds a server's read model (projections.Replay). Its
// errors are *Error with a replay code, CodeInternal or the context's.
type Replayer func(ctx context.Context, req ReplayRequest) (projections.ReplayReport, error)

// NewReplayer returns the Replayer of model, which follows log, logging
// each replay to logger.
func NewReplayer(log projections.ReplayLog, model *projections.RevisionHistory, logger *slog.Logger) Replayer {
	return func(ctx context.Context, req ReplayRequest) (projections.ReplayReport, error) {
		logger.Info("replaying the event log into a new generation of the read model", "to_sequence", req.ToSequence, "generation", model.Generation())
		report, err := projections.Replay(ctx, log, model, projections.ReplayOptions{ToSequence: req.ToSequence})
		switch {
		case errors.Is(err, projections.ErrReplayRunning):
			return report, &Error{Code: CodeReplayRunning, Message: err.Error()}
		case errors.Is(err, projections.ErrBeyondLog):
			return report, &Error{Code: CodeBeyondLog, Message: err.Error()}
		case err != nil:
			logger.Error("replay failed; the live generation keeps serving", "error", err)
			return report, err
		}
		d := report.Differences
		logger.Info("replay done", "generation", report.Generation, "switched", report.Switched, "to_sequence", report.ToSequence,
			"events", report.EventsRead, "seconds", report.Seconds, "apps_changed", d.Apps.Changed+d.Apps.Added+d.Apps.Removed,
			"revisions_changed", d.Revisions.Changed+d.Revisions.Added+d.Revisions.Removed)
		return report, nil
	}
}

// RequestAuthorizer says who sent a request message: the actor, or an
// *events.Rejection that refuses the request (unauthenticated,
// forbidden); another error is transient.
type RequestAuthorizer func(ctx context.Context, msg *nats.Msg) (actor string, err error)

// ServeReplay answers replay requests on nc (the server's connection)
// with replay, once authorize has accepted them, until the subscription it
// returns is drained or ctx ends.
// Replicas share the requests through a queue group: the one that answers
// rebuilds its own model (ServeReplayAll reaches every one). It answers only to inboxes, so that a reply
// subject naming a Revline subject cannot make it write there.
func ServeReplay(ctx context.Context, nc *nats.Conn, replay Replayer, authorize RequestAuthorizer, logger *slog.Logger) (*nats.Subscription, error) {
	sub, err := nc.QueueSubscribe(SubjectReplay, "revline-replay", func(msg *nats.Msg) {
		handleReplay(ctx, msg, "", replay, authorize, logger)
	})
	return subscribed(nc, sub, err)
}

// ServeReplayAll answers, on nc, the replay requests sent to every server
// (SubjectReplayAll), as server: each replica answers at once that it
// started (so that the requester knows how many answer), then with its
// report, until the subscription is drained or ctx ends.
func ServeReplayAll(ctx context.Context, nc *nats.Conn, server string, replay Replayer, authorize RequestAuthorizer, logger *slog.Logger) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(SubjectReplayAll, func(msg *nats.Msg) {
		handleReplay(ctx, msg, server, replay, authorize, logger)
	})
	return subscribed(nc, sub, err)
}

func subscribed(nc *nats.Conn, sub *nats.Subscription, err error) (*nats.Subscription, error) {
	if err != nil {
		return nil, fmt.Errorf("replay requests: %w", err)
	}
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("replay requests: %w", err)
	}
	return sub, nil
}

// handleReplay answers one replay request, in the background: a replay
// takes a while, and the next request (refused while it runs) must not
// wait behind it. A server that is named (a request to every server)
// answers first that it started.
func handleReplay(ctx context.Context, msg *nats.Msg, server string, replay Replayer, authorize RequestAuthorizer, logger *slog.Logger) {
	if !strings.HasPrefix(msg.Reply, "_INBOX.") {
		logger.Warn("replay request without an inbox to answer; ignored")
		return
	}
	respond := func(reply ReplayReply) {
		reply.Server = server
		data, err := json.Marshal(reply)
		if err == nil {
			err = msg.Respond(data)
		}
		if err != nil {
			logger.Warn("replay request: answer failed", "error", err)
		}
	}
	go func() {
		actor, err := authorize(ctx, msg)
		var rej *events.Rejection
		switch {
		case errors.As(err, &rej):
			logger.Warn("replay request refused", "code", rej.Code, "reason", rej.Message)
			respond(ReplayReply{Code: rej.Code, Error: rej.Code + ": " + rej.Message})
		case err != nil:
			respond(ReplayReply{Code: CodeInternal, Error: err.Error()})
		default:
			logger.Info("replay requested", "by", actor)
			if server != "" {
				respond(ReplayReply{Started: true})
			}
			respond(answerReplay(ctx, msg.Data, replay))
		}
	}()
}

// answerReplay carries out one replay request.
func answerReplay(ctx context.Context, data []byte, replay Replayer) ReplayReply {
	var req ReplayRequest
	if len(data) > maxReplayRequest {
		return ReplayReply{Code: CodeBadRequest, Error: fmt.Sprintf("request of %d bytes; the limit is %d", len(data), maxReplayRequest)}
	}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &req); err != nil {
			return ReplayReply{Code: CodeBadRequest, Error: "request is not JSON: " + err.Error()}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, ReplayTimeout)
	defer cancel()
	report, err := replay(ctx, req)
	var qerr *Error
	switch {
	case errors.As(err, &qerr):
		return ReplayReply{Code: qerr.Code, Error: qerr.Message}
	case err != nil:
		return ReplayReply{Code: CodeInternal, Error: err.Error()}
	}
	return ReplayReply{Report: &report}
}

// AskReplay asks the server on nc to replay, as `revline replay` does,
// signed by signer (an admin token's; nil sends it unsigned, which serve
// refuses), and returns its report. A refusal is an *Error.
func AskReplay(ctx context.Context, nc *nats.Conn, signer *events.Signer, req ReplayRequest) (projections.ReplayReport, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return projections.ReplayReport{}, err
	}
	out, err := signer.SignedRequest(SubjectReplay, data)
	if err != nil {
		return projections.ReplayReport{}, err
	}
	msg, err := nc.RequestMsgWithContext(ctx, out)
	if errors.Is(err, nats.ErrNoResponders) {
		return projections.ReplayReport{}, errors.New("no server answers replay requests (is `revline serve` running, and this version or newer?)")
	}
	if err != nil {
		return projections.ReplayReport{}, fmt.Errorf("replay request: %w", err)
	}
	var reply ReplayReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return projections.ReplayReport{}, fmt.Errorf("replay request: unreadable reply: %w", err)
	}
	if reply.Code != "" {
		return projections.ReplayReport{}, &Error{Code: reply.Code, Message: reply.Error}
	}
	if reply.Report == nil {
		return projections.ReplayReport{}, &Error{Code: CodeInternal, Message: "the server's reply has no report"}
	}
	return *reply.Report, nil
}

// ReplicaReplay is one server's answer to a replay request sent to every
// server: its report, or why it failed.
type ReplicaReplay struct {
	Server string                    `json:"server"`
	Report *projections.ReplayReport `json:"report,omitempty"`
	Code   string                    `json:"code,omitempty"`
	Error  string                    `json:"error,omitempty"`
}

// AskReplayAll asks every server on nc to replay (SubjectReplayAll),
// signed by signer as AskReplay, and returns each one's answer, by
// server name. Servers answer at once that they started: those that have
// answered within window of the first are waited for, until ctx ends
// (then the answers so far and ctx's error). No answer at all is an
// error.
func AskReplayAll(ctx context.Context, nc *nats.Conn, signer *events.Signer, req ReplayRequest, window time.Duration) ([]ReplicaReplay, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	out, err := signer.SignedRequest(SubjectReplayAll, data)
	if err != nil {
		return nil, err
	}
	out.Reply = nc.NewRespInbox()
	sub, err := nc.SubscribeSync(out.Reply)
	if err != nil {
		return nil, fmt.Errorf("replay request: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishMsg(out); err != nil {
		return nil, fmt.Errorf("replay request: %w", err)
	}
	answers := map[string]*ReplicaReplay{}
	pending := 0 // servers that started and have not answered yet
	var windowEnd time.Time
	for len(answers) == 0 || pending > 0 || !windowEnd.IsZero() {
		msgCtx, cancel := ctx, context.CancelFunc(func() {})
		if !windowEnd.IsZero() {
			msgCtx, cancel = context.WithDeadline(ctx, windowEnd)
		}
		msg, err := sub.NextMsgWithContext(msgCtx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && !windowEnd.IsZero():
			windowEnd = time.Time{} // the window is over: wait for those that started
			continue
		case err != nil && len(answers) == 0:
			return nil, errors.New("no server answers replay requests to every server (is `revline serve` running, and this version or newer?)")
		case err != nil:
			return sorted(answers), fmt.Errorf("replay: %d server(s) did not answer in time: %w", pending, err)
		}
		var reply ReplayReply
		if err := json.Unmarshal(msg.Data, &reply); err != nil || reply.Server == "" {
			continue // not an answer of this version
		}
		if len(answers) == 0 {
			windowEnd = time.Now().Add(window)
		}
		a, seen := answers[reply.Server]
		if !seen {
			a = &ReplicaReplay{Server: reply.Server}
			answers[reply.Server] = a
		}
		if reply.Started {
			pending++
			continue
		}
		a.Report, a.Code, a.Error = reply.Report, reply.Code, reply.Error
		if seen {
			pending--
		}
	}
	return sorted(answers), nil
}

func sorted(answers map[string]*ReplicaReplay) []ReplicaReplay {
	out := make([]ReplicaReplay, 0, len(answers))
	for _, a := range answers {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b ReplicaReplay) int { return strings.Compare(a.Server, b.Server) })
	return out
}
