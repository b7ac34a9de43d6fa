package server

import (
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/revline/revline/internal/testsupport"
)

// A flood of refusals is logged as a burst of lines, and the rest are
// counted in a summary: whoever can reach the port cannot fill the log.
func TestAFloodOfRefusalsIsSummarized(t *testing.T) {
	var logs testsupport.SyncBuffer
	r := &refusals{
		log: slog.New(slog.NewTextHandler(&logs, nil)), token: func(string) string { return "" },
		lines: make(chan string, refusalBacklog), quit: make(chan struct{}), summaryEvery: 50 * time.Millisecond,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.run()
	}()
	defer func() {
		close(r.quit)
		<-done
	}()
	const flood = refusalBacklog + 100
	for range flood {
		r.Errorf("%s", natsserver.ErrAuthentication.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// notLogged sums the summaries' counts (a summary may come while the
	// flood is still being read).
	notLogged := func() (n int) {
		for _, m := range regexp.MustCompile(`not_logged=(\d+)`).FindAllStringSubmatch(logs.String(), -1) {
			k, _ := strconv.Atoi(m[1])
			n += k
		}
		return n
	}
	logged := func() int { return strings.Count(logs.String(), `msg="NATS refused a client"`) }
	testsupport.Eventually(ctx, t, "every refusal logged or counted", func() bool { return logged()+notLogged() == flood })
	// The burst, and what the rate allows while the flood is read (a few
	// more on a slow machine): far fewer than the flood.
	if n := logged(); n < refusalBurst || n > flood/4 {
		t.Errorf("%d refusals of %d logged one by one, want about %d:\n%s", n, flood, refusalBurst, logs.String())
	}
}
