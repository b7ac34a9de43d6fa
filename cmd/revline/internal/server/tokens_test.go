package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/events"
	"github.com/revline/revline/internal/testsupport"
)

// get sends an HTTP GET with the token in the file tokenFile.
func get(t *testing.T, url, tokenFile string) *http.Response {
	t.Helper()
	value, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	return getWith(t, url, strings.TrimSpace(string(value)))
}

// getWith sends an HTTP GET with the token value.
func getWith(t *testing.T, url, value string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+value)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestTokens walks the tokens' life through the built CLI's commands and
// two replicas: serve makes the bootstrap admin token (0600) and logs where
// it is; `revline tokens create` over NATS as the admin token makes one
// that both replicas accept; revoked, it is refused by both from their
// next request on. No token value reaches a log line or a stream's
// message, and not even an admin token can read or write the token
// bucket.
func TestTokens(t *testing.T) {
	t.Parallel()
	var logs testsupport.SyncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	dir := t.TempDir()
	addrs := servertest.Serve(t, server.Config{DataDir: dir, Logger: logger})
	// A replica on the same NATS, with the server's identity.
	asServer, err := nats.NkeyOptionFromSeed(filepath.Join(dir, "auth", "server.nk"))
	if err != nil {
		t.Fatal(err)
	}
	replica := servertest.Serve(t, server.Config{NATSURL: addrs.NATSURL, NATSOptions: []nats.Option{asServer}, NoRunners: true, Logger: logger})
	if addrs.AdminTokenFile != filepath.Join(dir, "auth", auth.BootstrapFile) {
		t.Errorf("admin token file %s", addrs.AdminTokenFile)
	}
	if info, err := os.Stat(addrs.AdminTokenFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v, %v; want a 0600 file", info, err)
	}
	adminValue, _ := os.ReadFile(addrs.AdminTokenFile)
	if !strings.Contains(logs.String(), "file="+addrs.AdminTokenFile) {
		t.Errorf("serve did not log where the admin token is:\n%s", logs.String())
	}

	// Another holder of the admin token (on another machine, say) listens
	// to its inbox: the new token's value travels sealed to the
	// requester's key.
	eavesdropper, err := nats.Connect(addrs.NATSURL, tokenOptions(t, addrs.AdminTokenFile)...)
	if err != nil {
		t.Fatal(err)
	}
	defer eavesdropper.Close()
	heard, err := eavesdropper.SubscribeSync(events.InboxPrefix(auth.BootstrapName) + ".>")
	if err != nil {
		t.Fatal(err)
	}
	if err := eavesdropper.Flush(); err != nil {
		t.Fatal(err)
	}

	nkey := []string{"--token-file", addrs.AdminTokenFile}
	code, stdout, stderr := revline(t, addrs.NATSURL, append([]string{"tokens", "create", "ci", "--role", "viewer", "--app", "web*", "-o", "json"}, nkey...)...)
	var created struct {
		Value string     `json:"value"`
		Token auth.Token `json:"token"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &created) != nil || created.Value == "" || created.Token.Role != auth.RoleViewer || created.Token.Apps != "web*" || created.Token.Hash != "" {
		t.Fatalf("tokens create: exit %d, stdout %s, stderr %s", code, stdout, stderr)
	}
	replies := 0
	for {
		msg, err := heard.NextMsg(100 * time.Millisecond)
		if err != nil {
			break
		}
		replies++
		if strings.Contains(string(msg.Data), created.Value) || strings.Contains(string(msg.Data), strings.TrimPrefix(created.Value, "rvl_ci_")) {
			t.Errorf("a token's value went through %s in clear: %s", msg.Subject, msg.Data)
		}
	}
	if replies == 0 {
		t.Error("the eavesdropper heard no reply at all: the check cannot fail")
	}
	// A create request without a key to seal the value to is refused,
	// before any token is made.
	admin := events.NewSigner(auth.BootstrapName, strings.TrimSpace(string(adminValue)))
	if _, err := auth.Ask(context.Background(), eavesdropper, admin, auth.SubjectCreate, auth.Request{Name: "clear", Role: auth.RoleViewer}); err == nil || !strings.Contains(err.Error(), "seal_to") {
		t.Errorf("tokens create without seal_to: %v; want a refusal naming seal_to", err)
	}

	code, stdout, stderr = revline(t, addrs.NATSURL, append([]string{"tokens", "create", "ci", "--role", "admin"}, nkey...)...)
	if code != 1 || !strings.Contains(stderr, "exists") {
		t.Errorf("tokens create with a taken name: exit %d, %s %s", code, stdout, stderr)
	}
	code, stdout, stderr = revline(t, addrs.NATSURL, append([]string{"tokens", "create", "Bad.Name", "--role", "viewer"}, nkey...)...)
	if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "token name") {
		t.Errorf("tokens create with a bad name: exit %d, %s %s", code, stdout, stderr)
	}
	code, stdout, _ = revline(t, addrs.NATSURL, append([]string{"tokens", "list"}, nkey...)...)
	if code != 0 || !strings.Contains(stdout, "admin ") || !strings.Contains(stdout, "serve:bootstrap") || !strings.Contains(stdout, "web*") {
		t.Errorf("tokens list: exit %d:\n%s", code, stdout)
	}

	for _, httpURL := range []string{addrs.HTTPURL, replica.HTTPURL} {
		for path, want := range map[string]int{"/v1/apps/web/revisions": http.StatusNotFound, "/v1/apps/api/revisions": http.StatusForbidden} {
			resp := getWith(t, httpURL+path, created.Value)
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("GET %s%s with the ci token: %d, want %d", httpURL, path, resp.StatusCode, want)
			}
		}
	}
	code, stdout, stderr = revline(t, addrs.NATSURL, append([]string{"tokens", "revoke", "ci"}, nkey...)...)
	if code != 0 || !strings.Contains(stdout, "revoked") {
		t.Fatalf("tokens revoke: exit %d, %s %s", code, stdout, stderr)
	}
	for _, httpURL := range []string{addrs.HTTPURL, replica.HTTPURL} {
		resp := getWith(t, httpURL+"/v1/apps/web/revisions", created.Value)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET from %s with the revoked token: %d, want 401", httpURL, resp.StatusCode)
		}
	}

	// An admin token cannot read the bucket, nor write it.
	js := clientConn(t, addrs)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Each refused request waits out its deadline.
	if kv, err := js.KeyValue(ctx, auth.BucketName); err == nil {
		if entry, err := kv.Get(ctx, auth.BootstrapName); err == nil {
			t.Errorf("a token read the admin token's record: %s", entry.Value())
		}
		if _, err := kv.Put(ctx, "forged", []byte(`{"name":"forged","role":"admin","apps":"*"}`)); err == nil {
			t.Error("a token wrote a token")
		}
	}
	if _, err := js.Conn().Request("$JS.API.DIRECT.GET.KV_"+auth.BucketName+".$KV."+auth.BucketName+"."+auth.BootstrapName, nil, time.Second); err == nil {
		t.Error("the client identity read the token bucket with a direct get")
	}

	// No token value in a log line, nor in any stream's message (read as
	// the server).
	values := []string{strings.TrimSpace(string(adminValue)), created.Value}
	for _, v := range values {
		if strings.Contains(logs.String(), v[len(v)-64:]) {
			t.Errorf("a token's secret is in the log")
		}
	}
	sjs := serverConn(t, addrs)
	ctx, cancelScan := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelScan()
	var names []string
	streamNames := sjs.StreamNames(ctx)
	for name := range streamNames.Name() {
		names = append(names, name)
	}
	if err := streamNames.Err(); err != nil || len(names) == 0 {
		t.Fatalf("stream names: %v %v", names, err)
	}
	for _, v := range values {
		if found := messagesHolding(ctx, t, sjs, names, v[len(v)-64:]); len(found) > 0 {
			t.Errorf("a token's secret is in %v", found)
		}
	}
}
