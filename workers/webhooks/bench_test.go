package webhooks_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/revline/revline/events"
	"github.com/revline/revline/internal/testsupport"
	"github.com/revline/revline/workers/webhooks"
)

// BenchmarkDelivery measures how fast 500 events reach a webhook's
// loopback receiver (signed, one in flight, each attempt and the last
// event delivered recorded in the deliveries bucket), against 500 bare signed POSTs of the same kind of
// body to the same receiver, one after another, in the same run: "ratio"
// is the webhook's time over the bare time.
func BenchmarkDelivery(b *testing.B) {
	const n = 500
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, webhooks.Policy{AllowPrivate: true})
		secret := webhooks.NewSecret()
		r := newReceiver(b, secret)
		e.add(webhooks.Webhook{URL: r.srv.URL}, secret)
		var sent []events.Envelope
		for i := range n {
			sent = append(sent, e.appendEvent("web", events.AppSuspended{RevisionID: strconv.Itoa(i)}))
		}
		ctx := waitCtx(b)
		b.StartTimer()
		start := time.Now()
		e.run(webhooks.Config{AllowPrivate: true})
		testsupport.Eventually(ctx, b, "every event arrived", func() bool { return len(r.unique()) == n })
		hooked := time.Since(start)

		start = time.Now()
		for i, env := range sent {
			ce, err := webhooks.NewCloudEvent(env)
			if err != nil {
				b.Fatal(err)
			}
			ce.ID = fmt.Sprintf("bare-%d", i)
			body, _ := json.Marshal(ce)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.srv.URL, bytes.NewReader(body))
			req.Header.Set("Content-Type", webhooks.ContentType)
			req.Header.Set(webhooks.HeaderID, ce.ID)
			now := time.Now()
			req.Header.Set(webhooks.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
			req.Header.Set(webhooks.HeaderSignature, webhooks.Sign(secret, ce.ID, now, body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusNoContent {
				b.Fatalf("bare POST: %v %v", resp, err)
			}
			_ = resp.Body.Close()
		}
		bare := time.Since(start)
		b.ReportMetric(float64(hooked.Microseconds())/n, "µs/event")
		b.ReportMetric(float64(bare.Microseconds())/n, "bare-µs/post")
		b.ReportMetric(float64(hooked)/float64(bare), "ratio")
	}
}
