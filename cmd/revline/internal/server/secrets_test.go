package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/events/secrets"
	"github.com/revline/revline/internal/testsupport"
)

// A secret set through the CLI with the client identity reaches the app's
// runners as an environment variable, and its value is nowhere else: not in
// any message of the event, command, outcome or dead-letter streams, not in
// the server's log (at debug level), and not readable back by a client.
func TestSecretValuesReachRunnersAndNothingElse(t *testing.T) {
	t.Parallel()
	const value = "hf_s3cr3t-value-7f3a"
	var serverLog testsupport.SyncBuffer
	addrs := servertest.Serve(t, server.Config{
		NATSListen: "127.0.0.1:0",
		Logger:     slog.New(slog.NewTextHandler(&serverLog, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	cli := asClient(t, addrs)
	cli("secrets", "set", "web", "HF_TOKEN="+value)
	cli("deploy", "web", "--command", runnerBin)
	if out := cli("secrets", "list", "web"); !strings.Contains(out, "HF_TOKEN") || strings.Contains(out, value) {
		t.Errorf("secrets list: %s", out)
	}
	// The gateway gets the route a moment after the deploy is recorded.
	var got []byte
	waitCtx, cancelWait := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelWait()
	testsupport.Eventually(waitCtx, t, "the gateway routes to the runner", func() bool {
		resp, err := http.Get(addrs.GatewayURL + "/apps/web/env?name=HF_TOKEN")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		got, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK
	})
	if string(got) != value {
		t.Fatalf("the runner's HF_TOKEN is %q", got)
	}
	cli("secrets", "unset", "web", "HF_TOKEN")

	// A client may write values, never read them back.
	js := clientConn(t, addrs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := secrets.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	version, err := store.Put(ctx, "web", "OTHER", []byte("written by a client"))
	if err != nil {
		t.Fatalf("a client cannot write a secret value: %v", err)
	}
	// A refused request gets no answer: it waits out a context of its own.
	refused, cancelRefused := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancelRefused()
	if _, err := store.Get(refused, "web", "OTHER", version); err == nil || errors.Is(err, secrets.ErrVersionGone) {
		t.Errorf("a client read a secret value back (or was told only that it is gone): %v", err)
	}

	// The value is in no stream but the secret store, and in no log line.
	names := []string{events.EventStreamName, commandbus.CommandStreamName, commandbus.OutcomeStreamName, commandbus.DeadLetterStreamName}
	for _, where := range messagesHolding(ctx, t, serverConn(t, addrs), names, value) {
		t.Errorf("%s holds the secret's value", where)
	}
	if strings.Contains(serverLog.String(), value) {
		t.Error("the server's log holds the secret's value")
	}
}

func fmtHeader(h nats.Header) string {
	var b strings.Builder
	for k, vs := range h {
		b.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
	}
	return b.String()
}

// clientConn connects to serve's embedded NATS server as the bootstrap
// admin token, the client with the most rights; the errors of what it may
// not do are not printed.
func clientConn(t *testing.T, addrs server.Addresses) jetstream.JetStream {
	t.Helper()
	return connWith(t, addrs, tokenOptions(t, addrs.AdminTokenFile)...)
}

// tokenOptions are the options that connect as the token in file.
func tokenOptions(t *testing.T, file string) []nats.Option {
	t.Helper()
	opts, err := fileSigner(t, file).NATSOptions()
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

// fileSigner is the signer of the token in file.
func fileSigner(t *testing.T, file string) *events.Signer {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	value := strings.TrimSpace(string(data))
	return events.NewSigner(auth.ClaimedName(value), value)
}

// messagesHolding names the messages of the streams names ("stream S,
// message N on SUBJECT") whose payload or headers hold needle.
func messagesHolding(ctx context.Context, t *testing.T, js jetstream.JetStream, names []string, needle string) []string {
	t.Helper()
	var found []string
	for _, name := range names {
		stream, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for seq := uint64(1); seq <= stream.CachedInfo().State.LastSeq; seq++ {
			msg, err := stream.GetMsg(ctx, seq)
			if err != nil {
				continue // deleted, or never there
			}
			if bytes.Contains(msg.Data, []byte(needle)) || strings.Contains(fmtHeader(msg.Header), needle) {
				found = append(found, fmt.Sprintf("stream %s, message %d on %s", name, seq, msg.Subject))
			}
		}
	}
	return found
}

// serverConn connects to serve's embedded NATS server with the server's
// own identity (every right), which lies next to the admin token.
func serverConn(t *testing.T, addrs server.Addresses) jetstream.JetStream {
	t.Helper()
	return connAs(t, addrs, filepath.Join(filepath.Dir(addrs.AdminTokenFile), "server.nk"))
}

// connAs connects to serve's embedded NATS server with the identity in
// seedFile, printing no asynchronous error.
func connAs(t *testing.T, addrs server.Addresses, seedFile string) jetstream.JetStream {
	t.Helper()
	return connWith(t, addrs, nkeyOption(t, seedFile))
}

// connWith connects to serve's embedded NATS server with opts, printing
// no asynchronous error.
func connWith(t *testing.T, addrs server.Addresses, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(addrs.NATSURL, append(opts, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// A runner that cannot start at all (here its secret's value is gone from
// the store) is reported set up and terminated, with the reason, so the
// log says why the app does not scale, and a waiting scale ends at the
// third failure instead of its deadline.
func TestARunnerThatCannotStartIsInTheLog(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{})
	cli := asClient(t, addrs)
	cli("secrets", "set", "web", "HF_TOKEN=value")
	cli("deploy", "web", "--command", runnerBin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := secrets.Open(ctx, serverConn(t, addrs))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Purge(ctx, "web", "HF_TOKEN"); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := revline(t, addrs.NATSURL, "apps", "scale", "web", "--min-concurrency", "2", "--timeout", "50s", "--token-file", addrs.AdminTokenFile)
	if code != 1 || !strings.Contains(stderr, "keep failing") || !strings.Contains(stderr, "could not start") {
		t.Fatalf("scale: exit %d, stdout %q, stderr %q; want the failures named before the deadline", code, stdout, stderr)
	}
	audit := cli("audit", "web", "--type", "runner.*", "-o", "jsonl")
	if !strings.Contains(audit, "runner could not start") || !strings.Contains(audit, "HF_TOKEN") {
		t.Errorf("the log does not say why the runner did not start:\n%s", audit)
	}
}
