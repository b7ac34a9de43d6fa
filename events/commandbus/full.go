package commandbus

import (
	"errors"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// streamStoreFailed is JetStream's error code for a message a stream did
// not store (JSStreamStoreFailedF); its description says why.
const streamStoreFailed jetstream.ErrorCode = 10077

// IsStreamFull reports whether err is JetStream's refusal to store a
// command because REVLINE_COMMANDS holds its byte limit
// (CommandStreamMaxBytes): nothing was stored, and the same command may be
// sent again once there is room.
func IsStreamFull(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == streamStoreFailed && strings.Contains(apiErr.Description, "maximum bytes exceeded")
}
