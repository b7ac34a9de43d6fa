package queryapi

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// fakeRequest is a micro.Request whose replies fail as told.
type fakeRequest struct {
	micro.Request // unused methods panic
	data          []byte
	respondErr    error
	errorErr      error
	// What was sent, or tried.
	responded []byte
	code      string
	message   string
}

func (r *fakeRequest) Data() []byte { return r.data }

func (r *fakeRequest) Respond(data []byte, _ ...micro.RespondOpt) error {
	r.responded = data
	return r.respondErr
}

func (r *fakeRequest) Error(code, description string, _ []byte, _ ...micro.RespondOpt) error {
	r.code, r.message = code, description
	return r.errorErr
}

func testService(maxPayload int64) (*service, *bytes.Buffer) {
	var logs bytes.Buffer
	return &service{maxPayload: func() int64 { return maxPayload }, log: slog.New(slog.NewTextHandler(&logs, nil))}, &logs
}

func answering(v any) answerFunc {
	return func(context.Context, Request, int) (any, error) { return v, nil }
}

func TestAFailedReplyIsLoggedAndAnsweredWithAnError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		respondErr error
		code       string
	}{
		{"max payload", nats.ErrMaxPayload, CodeReplyTooLarge},
		{"other", nats.ErrConnectionDraining, CodeInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, logs := testService(1 << 20)
			req := &fakeRequest{data: []byte(`{"app":"web"}`), respondErr: fmt.Errorf("%w: %s", micro.ErrRespond, tc.respondErr)} // as micro wraps it
			s.respond(req, EndpointRevision, answering(map[string]string{"revision_id": "r1"}))
			if req.responded == nil {
				t.Fatal("no reply was tried")
			}
			if req.code != tc.code || !strings.Contains(req.message, "could not send") {
				t.Fatalf("error reply %s %q, want %s saying the answer could not be sent", req.code, req.message, tc.code)
			}
			if !strings.Contains(logs.String(), "query answer not sent") || !strings.Contains(logs.String(), tc.respondErr.Error()) {
				t.Fatalf("log %q, want the send failure", logs.String())
			}
		})
	}
}

func TestAnAnswerOverTheMaxPayloadIsNeverSent(t *testing.T) {
	t.Parallel()
	s, logs := testService(100)
	req := &fakeRequest{data: []byte(`{"app":"web"}`)}
	s.respond(req, EndpointRevision, answering(strings.Repeat("x", 200)))
	if req.responded != nil {
		t.Fatalf("sent %d bytes over a 100-byte max payload", len(req.responded))
	}
	if req.code != CodeReplyTooLarge || !strings.Contains(req.message, "max_payload") {
		t.Fatalf("error reply %s %q, want reply_too_large naming the max payload", req.code, req.message)
	}
	if !strings.Contains(logs.String(), "too large") {
		t.Fatalf("log %q, want a warning", logs.String())
	}
}

func TestAnErrorReplyThatFailsIsLogged(t *testing.T) {
	t.Parallel()
	s, logs := testService(1 << 20)
	req := &fakeRequest{data: []byte(`{"app":"Not Valid"}`), errorErr: nats.ErrConnectionClosed}
	s.respond(req, EndpointRevisions, answering(nil))
	if req.code != CodeBadRequest {
		t.Fatalf("error reply %s, want bad_request", req.code)
	}
	if !strings.Contains(logs.String(), "error reply not sent") || !strings.Contains(logs.String(), nats.ErrConnectionClosed.Error()) {
		t.Fatalf("log %q, want the failed error reply", logs.String())
	}
}

func TestErrorDescriptionsFitAHeader(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", maxErrorDescription)
	for _, tc := range []struct{ in, want string }{
		{"two\r\nlines", "two lines"},
		{"", "query failed"},
		{" \n ", "query failed"},
	} {
		if got := errorDescription(tc.in); got != tc.want {
			t.Errorf("errorDescription(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	got := errorDescription(long)
	if len(got) > maxErrorDescription || !utf8.ValidString(got) || !strings.HasSuffix(got, "...") {
		t.Errorf("errorDescription of %d bytes = %d bytes, valid UTF-8 %v", len(long), len(got), utf8.ValidString(got))
	}
}
