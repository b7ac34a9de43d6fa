package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/revline/revline/events"
)

// Subjects of the token requests the server answers: the CLI's `revline
// tokens` commands send them as an admin token, which may publish there
// but not subscribe, so only the server answers.
const (
	SubjectPrefix  = "revline.tokens."
	SubjectCreate  = SubjectPrefix + "create"
	SubjectList    = SubjectPrefix + "list"
	SubjectRevoke  = SubjectPrefix + "revoke"
	requestTimeout = 10 * time.Second
	queueGroup     = "revline-tokens"
	// replyPrefix is where tokens receive replies (below it, each its
	// own, events.InboxPrefix): the server, which may publish anywhere,
	// answers nowhere else, so a reply subject naming a Revline subject
	// cannot make it write there.
	replyPrefix = "_INBOX."
	maxRequest  = 4 << 10
)

// Request is the body of a token request. The request is signed as a
// command is (events.Signer), by an admin token, whose actor is recorded
// as the author of what it does.
type Request struct {
	Name string `json:"name,omitempty"`
	Role Role   `json:"role,omitempty"`
	Apps string `json:"apps,omitempty"`
	// SealTo, required by create, is a curve (xkey) public key of the
	// requester's: the new token's value is sealed to it, since every
	// connection of the requesting token can read the replies in its
	// inbox.
	SealTo string `json:"seal_to,omitempty"`
}

// Reply is the answer to a token request.
type Reply struct {
	// SealedValue is the new token's value (create only), sealed to the
	// request's SealTo by SealedBy (NaCl box, base64); it is shown once.
	// OpenValue opens it.
	SealedValue string `json:"sealed_value,omitempty"`
	SealedBy    string `json:"sealed_by,omitempty"`
	// Value is the opened SealedValue, set by OpenValue; never sent.
	Value  string  `json:"-"`
	Token  *Token  `json:"token,omitempty"`
	Tokens []Token `json:"tokens,omitempty"`
	Error  string  `json:"error,omitempty"`
	// refused is the code of a refusal (events.CodeUnauthenticated,
	// events.CodeForbidden), for the server's log.
	refused string
}

// Serve answers token requests on nc (the server's connection) until the
// subscription it returns is drained. Replicas share the work through a
// queue group.
func Serve(nc *nats.Conn, s *Store, log *slog.Logger) (*nats.Subscription, error) {
	sub, err := nc.QueueSubscribe(SubjectPrefix+"*", queueGroup, func(msg *nats.Msg) {
		if !strings.HasPrefix(msg.Reply, replyPrefix) {
			log.Warn("token request without an inbox to answer; ignored", "subject", msg.Subject)
			return
		}
		reply := s.answer(msg)
		if reply.refused != "" {
			log.Warn("token request refused", "subject", msg.Subject, "token", msg.Header.Get(events.HeaderKey), "reason", reply.Error)
		}
		data, err := json.Marshal(reply)
		if err == nil {
			err = msg.Respond(data)
		}
		if err != nil {
			log.Warn("token request: answer failed", "subject", msg.Subject, "error", err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("token requests: %w", err)
	}
	// Once Serve returns, the server knows the subscription: a request
	// sent right after serve says it is ready is answered.
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("token requests: %w", err)
	}
	return sub, nil
}

// answer carries out one token request. Replies carry no hashes: they are
// the server's business.
func (s *Store) answer(msg *nats.Msg) Reply {
	reply := s.carryOut(msg)
	if reply.Token != nil {
		reply.Token.Hash = ""
	}
	for i := range reply.Tokens {
		reply.Tokens[i].Hash = ""
	}
	return reply
}

// carryOut does what a token request asks.
func (s *Store) carryOut(msg *nats.Msg) Reply {
	var req Request
	if len(msg.Data) > maxRequest {
		return Reply{Error: fmt.Sprintf("request of %d bytes; the limit is %d", len(msg.Data), maxRequest)}
	}
	if len(msg.Data) > 0 {
		if err := json.Unmarshal(msg.Data, &req); err != nil {
			return Reply{Error: "request is not JSON: " + err.Error()}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	now := time.Now()
	by, refusal := s.authorizeRequest(ctx, msg, now)
	if refusal != nil {
		return *refusal
	}
	switch msg.Subject {
	case SubjectCreate:
		sealer, err := nkeys.CreateCurveKeys()
		if err != nil {
			return Reply{Error: err.Error()}
		}
		// Checked before the token is made: a value that cannot be sealed
		// is not made at all.
		if _, err := sealer.Seal([]byte("check"), req.SealTo); err != nil {
			return Reply{Error: "seal_to: want the curve (xkey) public key the new token's value is sealed to (every connection of your token can read its inbox)"}
		}
		value, t, err := s.Create(ctx, NewToken{Name: req.Name, Role: req.Role, Apps: req.Apps, CreatedBy: by}, now)
		if err != nil {
			return Reply{Error: err.Error()}
		}
		sealed, err := sealer.Seal([]byte(value), req.SealTo)
		if err != nil {
			return Reply{Error: err.Error()}
		}
		sealedBy, err := sealer.PublicKey()
		if err != nil {
			return Reply{Error: err.Error()}
		}
		return Reply{SealedValue: base64.StdEncoding.EncodeToString(sealed), SealedBy: sealedBy, Token: &t}
	case SubjectList:
		tokens, err := s.List(ctx)
		if err != nil {
			return Reply{Error: err.Error()}
		}
		return Reply{Tokens: tokens}
	case SubjectRevoke:
		t, err := s.Revoke(ctx, req.Name, by, now)
		if err != nil {
			return Reply{Error: err.Error()}
		}
		return Reply{Token: &t}
	}
	return Reply{Error: fmt.Sprintf("unknown token request %s", msg.Subject)}
}

// authorizeRequest returns the actor of a token request signed by an
// admin token, or the reply that refuses it.
func (s *Store) authorizeRequest(ctx context.Context, msg *nats.Msg, now time.Time) (string, *Reply) {
	actor, err := s.authorizeAdmin(ctx, msg, now)
	var rej *events.Rejection
	switch {
	case errors.As(err, &rej):
		// Every refusal's sentence starts with its code.
		return "", &Reply{Error: rej.Code + ": " + strings.TrimPrefix(rej.Message, rej.Code+": "), refused: rej.Code}
	case err != nil:
		return "", &Reply{Error: err.Error()}
	}
	return actor, nil
}

// AuthorizeAdminRequest returns the actor of a request message (a server
// request other than a command, such as a replay) signed as a command is
// by an admin token on every app, or an *events.Rejection that refuses it
// (unauthenticated or forbidden); another error is transient.
func (s *Store) AuthorizeAdminRequest(ctx context.Context, msg *nats.Msg) (string, error) {
	return s.authorizeAdmin(ctx, msg, time.Now())
}

func (s *Store) authorizeAdmin(ctx context.Context, msg *nats.Msg, now time.Time) (string, error) {
	t, err := s.authenticateRequest(ctx, msg, now)
	if err != nil {
		return "", err
	}
	if err := t.Authorize(Admin, ""); err != nil {
		return "", &events.Rejection{Code: events.CodeForbidden, Message: err.Error()}
	}
	return t.Actor(), nil
}

// AuthorizeQuery says who sent a query (msg, signed as a command is,
// events.Signer.SignedRequest): it returns whether that token may view an
// app (nil, or an *events.Rejection with code events.CodeForbidden), or an
// *events.Rejection with code events.CodeUnauthenticated when the query
// is unsigned or its signature is not a live token's, made within
// MaxSignatureAge; another error is transient (queryapi.WithAuthorizer).
func (s *Store) AuthorizeQuery(ctx context.Context, msg *nats.Msg) (func(app string) error, error) {
	t, err := s.authenticateRequest(ctx, msg, time.Now())
	if err != nil {
		return nil, err
	}
	return func(app string) error {
		if err := t.Authorize(Read, app); err != nil {
			return &events.Rejection{Code: events.CodeForbidden, Message: "forbidden: " + err.Error()}
		}
		return nil
	}, nil
}

// authenticateRequest returns the live token that signed a request
// message, made at most MaxSignatureAge from now, or an *events.Rejection
// with code events.CodeUnauthenticated; another error is transient.
func (s *Store) authenticateRequest(ctx context.Context, msg *nats.Msg, now time.Time) (Token, error) {
	sig, err := events.ReadSignature(msg.Subject, msg.Header, msg.Data)
	if err == nil {
		var t Token
		if t, err = s.checkSignature(ctx, sig, now); err == nil {
			return t, nil
		}
	}
	if errors.Is(err, ErrUnauthenticated) || errors.Is(err, events.ErrBadSignature) {
		return Token{}, &events.Rejection{Code: events.CodeUnauthenticated, Message: err.Error()}
	}
	return Token{}, err
}

// OpenValue opens the new token's value of a create reply with the curve
// key pair whose public key the request gave as SealTo, and sets Value.
func (r *Reply) OpenValue(kp nkeys.KeyPair) error {
	sealed, err := base64.StdEncoding.DecodeString(r.SealedValue)
	if err != nil {
		return fmt.Errorf("token reply: sealed value: %w", err)
	}
	value, err := kp.Open(sealed, r.SealedBy)
	if err != nil {
		return fmt.Errorf("token reply: open the sealed value: %w", err)
	}
	r.Value = string(value)
	return nil
}

// Ask sends a token request as the CLI does, signed by signer (an admin
// token's; nil sends it unsigned, which the server refuses), and returns
// the reply; a reply's Error becomes the error.
func Ask(ctx context.Context, nc *nats.Conn, signer *events.Signer, subject string, req Request) (Reply, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return Reply{}, err
	}
	out, err := signer.SignedRequest(subject, data)
	if err != nil {
		return Reply{}, err
	}
	msg, err := nc.RequestMsgWithContext(ctx, out)
	if errors.Is(err, nats.ErrNoResponders) {
		return Reply{}, errors.New("no server answers token requests (is `revline serve` running, and this version or newer?)")
	}
	if err != nil {
		return Reply{}, fmt.Errorf("token request: %w", err)
	}
	var reply Reply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return Reply{}, fmt.Errorf("token request: unreadable reply: %w", err)
	}
	if reply.Error != "" {
		return reply, errors.New(reply.Error)
	}
	return reply, nil
}
