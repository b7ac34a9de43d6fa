package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/events/secrets"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/runner/runnertest"
)

// gatewayStatus asks the gateway for path and returns its status and body.
func gatewayStatus(t *testing.T, addrs server.Addresses, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(addrs.GatewayURL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// The outsider's sequence: an app with two runners and a secret is deleted.
// Its runner processes exit, the gateway answers 404 app_not_found, apps
// list leaves it out, list-rev says who deleted it, every command but a
// deploy is refused, the secret's value is purged, and the history stays.
// A deploy then starts it again as v2.
func TestADeletedAppStopsAndComesBackWithADeploy(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addrs := servertest.Serve(t, server.Config{})
	cli := asClient(t, addrs)
	var secret struct {
		Version uint64 `json:"version"`
	}
	if err := json.Unmarshal([]byte(cli("secrets", "set", "oops", "HF_TOKEN=hf_value", "-o", "json")), &secret); err != nil {
		t.Fatal(err)
	}
	cli("deploy", "oops", "--command", runnerBin, "--min-concurrency", "2")
	cli("deploy", "keep", "--command", runnerBin)
	// An app whose deploy is in progress is not deleted.
	slow := runnertest.NewGate(t)
	cli("deploy", "slow", "--command", slow.Command(runnerBin), "--no-wait")
	code, stdout, stderr := revline(t, addrs.NATSURL, "apps", "delete", "slow", "--token-file", addrs.AdminTokenFile)
	if code != 1 || !strings.Contains(stderr, "is being deployed") {
		t.Errorf("deleting an app while it deploys: exit %d, %s%s; want exit 1, deploy in progress", code, stdout, stderr)
	}
	slow.Open(t)
	testsupport.Eventually(ctx, t, "two runners of oops", func() bool { return len(runnersOf(t, cli, "oops")) == 2 })
	var runners []struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(cli("apps", "runners", "oops", "-o", "json")), &runners); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(ctx, t, "the gateway serves oops", func() bool {
		status, _ := gatewayStatus(t, addrs, "/apps/oops/")
		return status == http.StatusOK
	})

	var deleted struct {
		Status        string   `json:"status"`
		PurgedSecrets []string `json:"purged_secrets"`
	}
	if err := json.Unmarshal([]byte(cli("apps", "delete", "oops", "--reason", "made by mistake", "-o", "json")), &deleted); err != nil {
		t.Fatal(err)
	}
	if deleted.Status != "accepted" || !slices.Equal(deleted.PurgedSecrets, []string{"HF_TOKEN"}) {
		t.Fatalf("apps delete: %+v, want accepted with HF_TOKEN purged", deleted)
	}
	testsupport.Eventually(ctx, t, "oops's runners terminated", func() bool { return len(runnersOf(t, cli, "oops")) == 0 })
	for _, r := range runners {
		if err := syscall.Kill(r.PID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("runner process %d is still there after its app's deletion (%v)", r.PID, err)
		}
	}
	if status, body := gatewayStatus(t, addrs, "/apps/oops/"); status != http.StatusNotFound || !strings.Contains(body, `"app_not_found"`) {
		t.Errorf("gateway after the deletion: %d %s, want 404 app_not_found", status, body)
	}
	if list := cli("apps", "list"); strings.Contains(list, "oops") || !strings.Contains(list, "keep") {
		t.Errorf("apps list after the deletion:\n%s", list)
	}
	code, stdout, stderr = revline(t, addrs.NATSURL, "apps", "list-rev", "oops", "--token-file", addrs.AdminTokenFile)
	if code != 1 || !strings.Contains(stdout+stderr, "was deleted by") || !strings.Contains(stdout+stderr, "made by mistake") {
		t.Errorf("list-rev of the deleted app: exit %d, %s%s; want exit 1 saying who deleted it", code, stdout, stderr)
	}
	code, stdout, stderr = revline(t, addrs.NATSURL, "apps", "scale", "oops", "--min-concurrency", "1", "--token-file", addrs.AdminTokenFile)
	if code != 1 || !strings.Contains(stderr, "was deleted by") || !strings.Contains(stderr, "deploy to start it again") {
		t.Errorf("scale of the deleted app: exit %d, %s%s; want exit 1 saying it was deleted", code, stdout, stderr)
	}
	if out := cli("apps", "delete", "oops"); !strings.Contains(out, "Nothing to do") {
		t.Errorf("deleting it again: %s", out)
	}
	if audit := cli("audit", "oops"); !strings.Contains(audit, `terminated: "app deleted"`) {
		t.Errorf("audit does not say why the runners stopped:\n%s", audit)
	}
	if history := cli("apps", "history", "oops"); !strings.Contains(history, `deleted the app: "made by mistake"`) || !strings.Contains(history, "deployed v1") {
		t.Errorf("apps history keeps the app's past and its deletion:\n%s", history)
	}
	js := serverConn(t, addrs)
	store, err := secrets.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(ctx, "oops", "HF_TOKEN", secret.Version); !errors.Is(err, secrets.ErrVersionGone) {
		t.Errorf("the deleted app's secret value: %v, want it purged", err)
	}
	// A secret set on the deleted app is refused, and its value, stored
	// first, does not stay behind.
	code, stdout, stderr = revline(t, addrs.NATSURL, "secrets", "set", "oops", "OTHER=orphan", "--token-file", addrs.AdminTokenFile)
	if code != 1 || !strings.Contains(stderr, "was deleted by") {
		t.Errorf("secrets set on the deleted app: exit %d, %s%s; want exit 1 saying it was deleted", code, stdout, stderr)
	}
	kv, err := js.KeyValue(ctx, secrets.BucketName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, secrets.Key("oops", "OTHER")); !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
		t.Errorf("the value of a secret refused on the deleted app: %v, want it purged", err)
	}

	cli("deploy", "oops", "--command", runnerBin)
	revs := revisionsByNumber(t, cli, "oops")
	if len(revs) != 1 || !revs[2].Current || revs[2].Status != "deployed" {
		t.Fatalf("after the new deploy: %+v, want v2 alone, current", revs)
	}
	testsupport.Eventually(ctx, t, "the gateway serves oops again", func() bool {
		status, _ := gatewayStatus(t, addrs, "/apps/oops/")
		return status == http.StatusOK
	})
	if list := cli("apps", "list"); !strings.Contains(list, "oops") {
		t.Errorf("apps list after the new deploy:\n%s", list)
	}
}
