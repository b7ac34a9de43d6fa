package server

import (
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// refusals logs what the embedded NATS server refused (a permissions
// violation, a connection whose identity it does not know) and who it
// was: NATS names only the connection, so its user, and the token that
// user is, are looked up. The server's other log lines are left out, as
// before (the embedded server logs nothing).
type refusals struct {
	srv *natsserver.Server
	log *slog.Logger
	// token names the token whose NATS user is nkey, "" for none.
	token func(nkey string) string
	// lines waits for the lookup, which must not run under the locks
	// NATS holds while it logs.
	lines chan string
	quit  chan struct{}
	// dropped counts the refusals left out of a full backlog.
	dropped atomic.Uint64
	// summaryEvery is how often the refusals not logged are counted in
	// one line (refusalSummaryEvery).
	summaryEvery time.Duration
}

// refusalBacklog bounds the refusals waiting to be logged: beyond it (a
// flood of them), they are dropped.
const refusalBacklog = 256

// A flood of refusals (a client connecting without an identity in a
// loop, say) is logged as refusalBurst lines, then refusalsPerSecond at
// most; the others are counted, and said every refusalSummaryEvery, so
// the log cannot be filled by whoever can reach the port.
const (
	refusalBurst        = 20
	refusalsPerSecond   = 5
	refusalSummaryEvery = 10 * time.Second
)

// logRefusals makes srv report its refusals to log; stop ends it.
func logRefusals(srv *natsserver.Server, log *slog.Logger, token func(nkey string) string) (stop func()) {
	r := &refusals{srv: srv, log: log, token: token, lines: make(chan string, refusalBacklog), quit: make(chan struct{}), summaryEvery: refusalSummaryEvery}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.run()
	}()
	srv.SetLoggerV2(r, false, false, false)
	// The logger stays: what NATS refuses after stop waits in the backlog,
	// or is dropped once it is full.
	return func() {
		close(r.quit)
		<-done
	}
}

var connectionID = regexp.MustCompile(` - cid:(\d+)`)

func (r *refusals) run() {
	summary := time.NewTicker(r.summaryEvery)
	defer summary.Stop()
	allowed, filled := float64(refusalBurst), time.Now()
	var suppressed uint64
	for {
		var line string
		select {
		case <-r.quit:
			return
		case <-summary.C:
			if n := suppressed + r.dropped.Swap(0); n > 0 {
				r.log.Warn("NATS refused more clients than are logged one by one", "not_logged", n, "over", r.summaryEvery)
				suppressed = 0
			}
			continue
		case line = <-r.lines:
		}
		now := time.Now()
		allowed = min(refusalBurst, allowed+now.Sub(filled).Seconds()*refusalsPerSecond)
		filled = now
		if allowed < 1 {
			suppressed++
			continue
		}
		allowed--
		attrs := []any{"refused", line}
		if m := connectionID.FindStringSubmatch(line); m != nil {
			cid, _ := strconv.ParseUint(m[1], 10, 64)
			attrs = append(attrs, r.who(cid)...)
		}
		r.log.Warn("NATS refused a client", attrs...)
	}
}

// who names the user of connection cid, and its token.
func (r *refusals) who(cid uint64) []any {
	connz, err := r.srv.Connz(&natsserver.ConnzOptions{CID: cid, State: natsserver.ConnAll, Username: true})
	if err != nil || len(connz.Conns) == 0 {
		return nil
	}
	conn := connz.Conns[0]
	attrs := []any{"client", conn.Name, "user", conn.AuthorizedUser}
	if name := r.token(conn.AuthorizedUser); name != "" {
		attrs = append(attrs, "token", name)
	}
	return attrs
}

// Errorf implements natsserver.Logger: NATS reports refusals as errors.
func (r *refusals) Errorf(format string, v ...any) {
	line := fmt.Sprintf(format, v...)
	if !strings.Contains(line, "Violation") && !strings.Contains(line, natsserver.ErrAuthentication.Error()) {
		return
	}
	select {
	case r.lines <- line:
	default: // a flood: counted, and said in the next summary
		r.dropped.Add(1)
	}
}

// Noticef implements natsserver.Logger; notices are not logged.
func (r *refusals) Noticef(string, ...any) {}

// Warnf implements natsserver.Logger; warnings are not logged.
func (r *refusals) Warnf(string, ...any) {}

// Fatalf implements natsserver.Logger; the server stops, and serve says why.
func (r *refusals) Fatalf(string, ...any) {}

// Debugf implements natsserver.Logger; debug lines are not logged.
func (r *refusals) Debugf(string, ...any) {}

// Tracef implements natsserver.Logger; traces are not logged.
func (r *refusals) Tracef(string, ...any) {}
