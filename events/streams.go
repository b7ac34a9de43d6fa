package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// apiAttemptTimeout bounds one attempt at a JetStream API request that
// is safe to repeat: on a cluster a request can go unanswered while the
// meta leader changes (seen in TestServeOnACluster as a consumer create
// that hung for two minutes), and waiting out the whole deadline on it
// helps nobody.
const apiAttemptTimeout = 5 * time.Second

// EnsureStream creates cfg's stream or updates it to cfg, trying again
// while the JetStream cluster is temporarily unable to (no answer, no meta
// leader, peers not placed yet) until ctx ends. A stream configured as
// cfg already is left alone: an update rewrites the stream's store, which
// nats-server does not guard against a consumer being made on it at the
// same moment (a data race seen under -race when a second replica
// started), and there is nothing to update.
func EnsureStream(ctx context.Context, js jetstream.StreamManager, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if stream, err := js.Stream(ctx, cfg.Name); err == nil && configured(cfg, stream.CachedInfo().Config) {
		return stream, nil
	}
	var stream jetstream.Stream
	err := RetryWhileBusy(ctx, func(attempt context.Context) (err error) {
		stream, err = js.CreateOrUpdateStream(attempt, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", cfg.Name, err)
	}
	return stream, nil
}

// EnsureKeyValue creates cfg's bucket or updates it to cfg, as
// EnsureStream does a stream: left alone if configured so already.
func EnsureKeyValue(ctx context.Context, js jetstream.KeyValueManager, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if kv, err := js.KeyValue(ctx, cfg.Bucket); err == nil {
		if status, err := kv.Status(ctx); err == nil && reflect.DeepEqual(normalizeBucket(cfg), normalizeBucket(status.Config())) {
			return kv, nil
		}
	}
	var kv jetstream.KeyValue
	err := RetryWhileBusy(ctx, func(attempt context.Context) (err error) {
		kv, err = js.CreateOrUpdateKeyValue(attempt, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// configured reports whether a stream's configuration got is want
// already: every setting want gives has its value in got (overlays), and
// neither a protective setting (ConfigDrift) nor one that want leaves
// unset, but that would change what the stream stores or who may read it
// (unsetSettings), differs.
func configured(want, got jetstream.StreamConfig) bool {
	return len(ConfigDrift(want, got)) == 0 && overlays(normalizeStream(want), normalizeStream(got)) &&
		reflect.DeepEqual(unsetSettings(want), unsetSettings(got))
}

// streamSettings are the settings of a stream that overlays cannot see
// when Revline leaves them unset (false, nil, none), and that ConfigDrift
// does not compare.
type streamSettings struct {
	Compression            jetstream.StoreCompression
	Transform              *jetstream.SubjectTransformConfig
	AllowDirect, Mirrored  bool
	MirrorDirect, Sourced  bool
	AllowAtomic, AllowTTLs bool
}

func unsetSettings(cfg jetstream.StreamConfig) streamSettings {
	return streamSettings{
		Compression: cfg.Compression, Transform: cfg.SubjectTransform,
		AllowDirect: cfg.AllowDirect, Mirrored: cfg.Mirror != nil,
		MirrorDirect: cfg.MirrorDirect, Sourced: len(cfg.Sources) > 0,
		AllowAtomic: cfg.AllowAtomicPublish, AllowTTLs: cfg.AllowMsgTTL,
	}
}

// overlays reports whether got already holds every setting want gives:
// want's fields that its JSON writes (omitempty leaves unset ones out),
// written over a copy of got, change nothing.
func overlays(want, got jetstream.StreamConfig) bool {
	wantJSON, err := json.Marshal(want)
	if err != nil {
		return false
	}
	gotJSON, err := json.Marshal(got)
	if err != nil {
		return false
	}
	var before, after jetstream.StreamConfig
	if json.Unmarshal(gotJSON, &before) != nil || json.Unmarshal(gotJSON, &after) != nil || json.Unmarshal(wantJSON, &after) != nil {
		return false
	}
	return reflect.DeepEqual(before, after)
}

// normalizeStream writes cfg's "no limit" values, and its one replica,
// the same way whether given as 0 or as the server fills them in.
func normalizeStream(cfg jetstream.StreamConfig) jetstream.StreamConfig {
	cfg.MaxMsgs, cfg.MaxBytes, cfg.MaxMsgsPerSubject = unlimited(cfg.MaxMsgs), unlimited(cfg.MaxBytes), unlimited(cfg.MaxMsgsPerSubject)
	cfg.MaxMsgSize, cfg.MaxConsumers = int32(unlimited(int64(cfg.MaxMsgSize))), int(unlimited(int64(cfg.MaxConsumers)))
	cfg.Replicas = max(cfg.Replicas, 1)
	return cfg
}

// normalizeBucket writes a bucket's configuration the same way whether
// given or as its status reads it back: "no limit" and one replica as the
// server fills them in, no sources rather than an empty list, and without
// the metadata the server adds itself (_nats.*).
func normalizeBucket(cfg jetstream.KeyValueConfig) jetstream.KeyValueConfig {
	cfg.MaxValueSize, cfg.MaxBytes = int32(unlimited(int64(cfg.MaxValueSize))), unlimited(cfg.MaxBytes)
	cfg.History, cfg.Replicas = max(cfg.History, 1), max(cfg.Replicas, 1)
	if len(cfg.Sources) == 0 {
		cfg.Sources = nil
	}
	metadata := maps.Clone(cfg.Metadata)
	maps.DeleteFunc(metadata, func(key, _ string) bool { return strings.HasPrefix(key, "_nats.") })
	cfg.Metadata = nil
	if len(metadata) > 0 {
		cfg.Metadata = metadata
	}
	return cfg
}

// EnsureConsumer creates the durable consumer cfg on stream or updates it
// to cfg, and returns it once it has a leader: a pull sent to a replicated
// consumer before that is lost, and only made again at its expiry. It
// tries again while the JetStream cluster is temporarily unable to answer
// (as EnsureStream does) until ctx ends: several replicas of a server
// starting at once create the same consumers.
func EnsureConsumer(ctx context.Context, js jetstream.StreamConsumerManager, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	var consumer jetstream.Consumer
	err := RetryWhileBusy(ctx, func(attempt context.Context) (err error) {
		consumer, err = js.CreateOrUpdateConsumer(attempt, stream, cfg)
		return err
	})
	if err == nil {
		err = waitForLeader(ctx, consumer)
	}
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	return consumer, nil
}

// waitForLeader returns once a replicated consumer has elected a leader.
func waitForLeader(ctx context.Context, consumer jetstream.Consumer) error {
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		var info *jetstream.ConsumerInfo
		err := RetryWhileBusy(ctx, func(attempt context.Context) (err error) {
			info, err = consumer.Info(attempt)
			return err
		})
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader != "" {
			return nil
		}
		if err := pause(ctx, delay); err != nil { // the server offers no notification
			return fmt.Errorf("no leader elected: %w", err)
		}
	}
}

// RetryWhileBusy runs request, each attempt bounded by apiAttemptTimeout,
// until it succeeds, fails in a way that will not change (see
// clusterBusy: no responders yet, no leader yet, a timed-out attempt), or
// ctx ends. request must be safe to repeat: a read, or a write with an
// expected sequence.
func RetryWhileBusy(ctx context.Context, request func(attempt context.Context) error) error {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		attempt, cancel := context.WithTimeout(ctx, apiAttemptTimeout)
		err := request(attempt)
		cancel()
		if err == nil || !clusterBusy(err) || ctx.Err() != nil {
			return err
		}
		if pause(ctx, delay) != nil {
			return err
		}
	}
}

// clusterBusy tells a JetStream cluster that cannot answer now from a
// refusal that will not change.
func clusterBusy(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10005, 10008, 10009: // no peers for placement yet, system unavailable, not the leader
			return true
		}
	}
	return false
}
