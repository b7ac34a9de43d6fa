package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/cmd/revline/internal/servertest"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections/audit"
)

// `revline audit verify`, with the client's identity, finds serve's chain
// intact, then reports the event someone with the server's rights slipped
// in, at its sequence, and exits 1.
func TestAuditVerifyFindsTheForgedEvent(t *testing.T) {
	t.Parallel()
	addrs := servertest.Serve(t, server.Config{})
	cli := asClient(t, addrs)
	cli("secrets", "set", "web", "A=1")
	cli("secrets", "set", "web", "B=2")
	cli("secrets", "set", "api", "A=1")

	var reports []audit.ChainReport
	if err := json.Unmarshal([]byte(cli("audit", "verify", "-o", "json")), &reports); err != nil {
		t.Fatal(err)
	}
	if len(reports) != 2 || !reports[0].OK || !reports[1].OK || reports[0].App != "api" || reports[1].Events != 2 {
		t.Fatalf("reports of an intact log: %+v", reports)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	forged, err := events.Chain("", []events.Envelope{events.NewEnvelope("web", events.SecretSet{Name: "A", Version: 9}, events.Metadata{Actor: "alice"}, time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := events.EventMsg(forged[0])
	if err != nil {
		t.Fatal(err)
	}
	ack, err := serverConn(t, addrs).PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	cli("secrets", "set", "web", "C=3") // chains on from the forged event

	code, stdout, stderr := revline(t, addrs.NATSURL, "audit", "verify", "--token-file", addrs.AdminTokenFile)
	want := fmt.Sprintf("web: BROKEN at sequence %d (%s): expected %s, found %s", ack.Sequence, audit.ReasonPrevHash, reports[1].LastHash, events.ZeroHash)
	if code != 1 || !strings.Contains(stdout, want) || !strings.Contains(stdout, "api: OK, 1 event from") || !strings.Contains(stderr, "1 of 2 chains broken") {
		t.Fatalf("verify after the forgery: exit %d\nstdout %s\nstderr %s\nwant a line %q", code, stdout, stderr, want)
	}
}
