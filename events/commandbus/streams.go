// Package commandbus is the client side of Revline's command bus: the
// streams commands and outcomes live in, and a Client that publishes a
// command and waits for its outcome. The command processor that consumes
// the commands lives in workers/processor.
package commandbus

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/events"
)

// Stream names.
const (
	CommandStreamName    = "REVLINE_COMMANDS"
	OutcomeStreamName    = "REVLINE_OUTCOMES"
	DeadLetterStreamName = "REVLINE_DEADLETTER"
)

// Retention of the bus streams. Commands and dead letters are kept a week
// for audit and replay. Outcomes are kept without a time limit: an outcome
// is final, and a command retried at any later time with the same id gets
// the outcome recorded the first time (see OutcomeLog). The exception is a
// refusal to decide a command at all, because its sender could not be
// authenticated or was not allowed: it is an answer to whoever sent it, not
// a decision about the app, and is kept RefusalRetention (so that anyone
// who can publish on the command subjects cannot fill the outcome stream
// for good).
const (
	CommandRetention    = 7 * 24 * time.Hour
	DeadLetterRetention = 7 * 24 * time.Hour
	RefusalRetention    = time.Hour
	// DuplicateWindow is how long JetStream itself drops a re-published
	// command id; past it the processor still recognises the id.
	DuplicateWindow = 2 * time.Minute
)

// Size limits of the bus streams, so that whoever may send commands cannot
// fill the disk the event log is on. Past its limit, each drops its
// oldest messages (discard old): the commands the processor decided long
// ago, whose outcomes REVLINE_OUTCOMES keeps. Refusing new commands
// instead would let one token that floods the stream, or a busy week,
// stop every command, the runner worker's reports included.
const (
	CommandStreamMaxBytes    = 1 << 30
	DeadLetterStreamMaxBytes = 256 << 20
)

// MaxCommandMsgSize is the largest command message, headers and payload
// together, that REVLINE_COMMANDS stores: JetStream refuses a larger one at
// publish time ("message size exceeds maximum allowed", API error code
// 10054), before it takes any room in the stream. It is not the rule on
// fields (the decider's limits, in package aggregates, are), but a guard
// well above what any valid command needs: the largest valid deploy takes
// about 14 KiB in msgpack and about 80 KiB in JSON when every character is
// escaped the most an encoder may (Go's encoding/json writes '<' as
// "\u003c", six bytes for one); the rest is room for headers.
const MaxCommandMsgSize = 128 << 10

// Partitions is how many partitions REVLINE_COMMANDS sorts commands into,
// by app: the command processor works each partition in order, one command
// at a time, and the partitions side by side. Every command of one app is
// in the same partition. Changing the number moves apps to other
// partitions: only do it with no command waiting.
const Partitions = 16

// PartitionSubjectPrefix starts the subject under which REVLINE_COMMANDS
// stores a command published on revline.commands.<app>.<command>: it is
// stored as revline.partitions.<partition>.<app>.<command>, where
// partition is JetStream's partition mapping of the app name (FNV-1a, modulo
// Partitions). Clients cannot publish there: the only way in is the
// stream's subject transform, so no one can put a command in another
// partition than its app's.
const PartitionSubjectPrefix = "revline.partitions."

// PartitionFilter is the filter subject of partition n's commands.
func PartitionFilter(n int) string {
	return PartitionSubjectPrefix + strconv.Itoa(n) + ".>"
}

// PublishedSubject returns the subject a command stored on subject was
// published on: the partition is taken out. Other subjects (a command
// stored before the stream was partitioned, a malformed one) are returned
// as they are.
func PublishedSubject(subject string) string {
	rest, ok := strings.CutPrefix(subject, PartitionSubjectPrefix)
	if !ok {
		return subject
	}
	if _, command, ok := strings.Cut(rest, "."); ok {
		return events.CommandSubjectPrefix + command
	}
	return subject
}

// StreamConfigs returns the configuration of the bus streams.
func StreamConfigs(replicas int) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        CommandStreamName,
			Description: "Revline commands, consumed by the command processor",
			Subjects:    []string{events.CommandSubjectPrefix + ">"},
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			MaxAge:      CommandRetention,
			MaxBytes:    CommandStreamMaxBytes,
			Discard:     jetstream.DiscardOld,
			Duplicates:  DuplicateWindow,
			MaxMsgSize:  MaxCommandMsgSize,
			// A command published on a well-formed subject goes to its
			// app's partition; one on any other subject keeps its subject,
			// and the processor answers it as malformed.
			SubjectTransform: &jetstream.SubjectTransformConfig{
				Source:      events.CommandSubjectPrefix + "*.*",
				Destination: fmt.Sprintf("%s{{partition(%d,1)}}.{{wildcard(1)}}.{{wildcard(2)}}", PartitionSubjectPrefix, Partitions),
			},
		},
		{
			Name:              OutcomeStreamName,
			Description:       "Revline command outcomes, one per command id, written once, under the key of the token that sent it",
			Subjects:          []string{events.OutcomeSubjectPrefix + ">"},
			Storage:           jetstream.FileStorage,
			Replicas:          replicas,
			MaxMsgsPerSubject: 1,
			// Refusals expire (RefusalRetention, a per-message TTL).
			AllowMsgTTL: true,
			// Direct gets, for clients: a direct get of the last message on
			// a subject names it in the request's subject, so NATS
			// permissions keep a token to its own outcomes
			// (revline.outcomes.<its name>.>); any replica answers one and
			// may lag, and a client that misses looks again. The processor
			// must never miss an outcome recorded before: its lookups go
			// to the leader (OutcomeLog.Lookup, STREAM.MSG.GET).
			AllowDirect: true,
		},
		{
			Name:        DeadLetterStreamName,
			Description: "Revline commands that could not be processed, with the reason",
			Subjects:    []string{events.DeadLetterSubject},
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			MaxAge:      DeadLetterRetention,
			MaxBytes:    DeadLetterStreamMaxBytes,
			Discard:     jetstream.DiscardOld,
		},
	}
}

// EnsureStreams creates or updates the bus streams.
func EnsureStreams(ctx context.Context, js jetstream.StreamManager, replicas int) error {
	for _, cfg := range StreamConfigs(max(replicas, 1)) {
		if _, err := events.EnsureStream(ctx, js, cfg); err != nil {
			return err
		}
	}
	return nil
}
