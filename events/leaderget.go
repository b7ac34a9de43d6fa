package events

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// LeaderGet asks the leader of stream for one message: the one at
// sequence seq, or, if seq is 0, the last one on lastBySubject (which may
// hold wildcards). It is a STREAM.MSG.GET, which jetstream.Stream's
// GetMsg turns into a direct get on a stream that allows them (key-value
// buckets do), which any replica answers: one that lags would miss a
// message just stored. It asks again while the cluster is busy
// (RetryWhileBusy). The error wraps jetstream.ErrMsgNotFound when the
// stream holds no such message.
func LeaderGet(ctx context.Context, js jetstream.JetStream, stream string, seq uint64, lastBySubject string) (*jetstream.RawStreamMsg, error) {
	req := map[string]any{"seq": seq}
	if seq == 0 {
		req = map[string]any{"last_by_subj": lastBySubject}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	prefix := cmp.Or(js.Options().APIPrefix, jetstream.DefaultAPIPrefix)
	var reply *nats.Msg
	err = RetryWhileBusy(ctx, func(attempt context.Context) (err error) {
		reply, err = js.Conn().RequestWithContext(attempt, prefix+"STREAM.MSG.GET."+stream, body)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get from the leader of %s: %w", stream, err)
	}
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Subject  string    `json:"subject"`
			Sequence uint64    `json:"seq"`
			Header   []byte    `json:"hdrs"`
			Data     []byte    `json:"data"`
			Time     time.Time `json:"time"`
		} `json:"message"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, fmt.Errorf("get from the leader of %s: %w", stream, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, fmt.Errorf("get from the leader of %s: %w", stream, jetstream.ErrMsgNotFound)
	case resp.Error != nil:
		return nil, fmt.Errorf("get from the leader of %s: %w", stream, resp.Error)
	case resp.Message == nil:
		return nil, fmt.Errorf("get from the leader of %s: %w", stream, jetstream.ErrInvalidJetStreamResponse)
	}
	msg := &jetstream.RawStreamMsg{Subject: resp.Message.Subject, Sequence: resp.Message.Sequence, Header: nats.Header{}, Data: resp.Message.Data, Time: resp.Message.Time}
	if len(resp.Message.Header) > 0 {
		if msg.Header, err = nats.DecodeHeadersMsg(resp.Message.Header); err != nil {
			return nil, fmt.Errorf("get from the leader of %s: %w", stream, err)
		}
	}
	return msg, nil
}
