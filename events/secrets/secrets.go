// Package secrets is the store of apps' secret values: a JetStream
// key-value bucket, REVLINE_SECRETS, keeping one version of each value
// (history 1), so that a replaced or unset value is gone.
//
// Values never travel in a command or an event. A client puts the value
// here, gets its version (the bucket's revision of the key), then sends the
// set_secret command with the name and that version; the event log records
// name, version, who and when. The runner worker reads, for each secret the
// log lists, exactly the version the log names, and gives it to runners as
// an environment variable. Clients may write the bucket, never read it.
package secrets

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/revline/revline/events"
)

// BucketName is the key-value bucket of secret values.
const BucketName = "REVLINE_SECRETS"

// MaxValueBytes bounds a secret's value.
const MaxValueBytes = 64 << 10

// ErrVersionGone is wrapped by the error of a Get whose version is no
// longer the stored one: the value was replaced or unset since.
var ErrVersionGone = errors.New("that version of the secret is no longer stored")

// Store reads and writes secret values.
type Store struct {
	kv jetstream.KeyValue
}

// Ensure creates or updates the bucket, as serve does at start-up.
func Ensure(ctx context.Context, js jetstream.JetStream, replicas int) (*Store, error) {
	kv, err := events.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:       BucketName,
		Description:  "Revline secret values, one version each; the event log records names and versions only",
		History:      1,
		MaxValueSize: MaxValueBytes,
		Storage:      jetstream.FileStorage,
		Replicas:     max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("secret store: %w", err)
	}
	return &Store{kv: kv}, nil
}

// Open binds to the bucket a server created, as a client does.
func Open(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	kv, err := js.KeyValue(ctx, BucketName)
	if err != nil {
		return nil, fmt.Errorf("secret store: %w (is serve running and up to date?)", err)
	}
	return &Store{kv: kv}, nil
}

// Key is the bucket key of app's secret name.
func Key(app, name string) string { return app + "." + name }

// Put stores value as app's secret name and returns its version.
func (s *Store) Put(ctx context.Context, app, name string, value []byte) (uint64, error) {
	if err := validate(app, name); err != nil {
		return 0, err
	}
	if len(value) > MaxValueBytes {
		return 0, fmt.Errorf("secret %s: the value is %d bytes, the limit is %d", name, len(value), MaxValueBytes)
	}
	version, err := s.kv.Put(ctx, Key(app, name), value)
	if err != nil {
		return 0, fmt.Errorf("store secret %s of %s: %w", name, app, err)
	}
	return version, nil
}

// Get returns version version of app's secret name. It returns an error
// wrapping ErrVersionGone when the store holds another version, or none.
func (s *Store) Get(ctx context.Context, app, name string, version uint64) ([]byte, error) {
	if err := validate(app, name); err != nil {
		return nil, err
	}
	entry, err := s.kv.Get(ctx, Key(app, name))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, fmt.Errorf("secret %s of %s, version %d: %w (none is stored)", name, app, version, ErrVersionGone)
	case err != nil:
		return nil, fmt.Errorf("read secret %s of %s: %w", name, app, err)
	case entry.Revision() != version:
		return nil, fmt.Errorf("secret %s of %s, version %d: %w (version %d is, not yet in the event log or left over)", name, app, version, ErrVersionGone, entry.Revision())
	}
	return entry.Value(), nil
}

// Purge removes every stored version of app's secret name.
func (s *Store) Purge(ctx context.Context, app, name string) error {
	if err := validate(app, name); err != nil {
		return err
	}
	if err := s.kv.Purge(ctx, Key(app, name)); err != nil {
		return fmt.Errorf("purge secret %s of %s: %w", name, app, err)
	}
	return nil
}

func validate(app, name string) error {
	if err := events.ValidateAppName(app); err != nil {
		return err
	}
	return events.ValidateSecretName(name)
}
