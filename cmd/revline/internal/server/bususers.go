package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/events/embedded"
)

// busUsers keeps the embedded NATS server's users in step with the
// tokens: the identities of the data directory, and one user per live
// token (identities.users). A token made is a user once its creation is
// answered; a token revoked is no user, and its connections are closed,
// once its revocation is answered (auth.Store.OnChange waits for it).
type busUsers struct {
	users *embedded.Users
	ids   identities
	log   *slog.Logger

	mu sync.Mutex
	// names are the token names of the users, by nkey.
	names map[string]string
	// applied is the token bucket revision the server's users are as of.
	applied uint64
	// first is closed once the users are the tokens' for the first time.
	first chan struct{}
	// changed is closed, and replaced, each time applied moves.
	changed chan struct{}
	// done gets run's error once it returns.
	done chan error
}

func newBusUsers(users *embedded.Users, ids identities, log *slog.Logger) *busUsers {
	return &busUsers{users: users, ids: ids, log: log, first: make(chan struct{}), changed: make(chan struct{}), done: make(chan error, 1)}
}

// start follows the tokens until ctx ends (wait returns then), and returns
// once the server's users are the tokens', or setupCtx ends first.
func (b *busUsers) start(ctx, setupCtx context.Context, tokens *auth.Store) error {
	go func() { b.done <- b.run(ctx, tokens) }()
	select {
	case <-b.first:
		return nil
	case err := <-b.done:
		return err
	case <-setupCtx.Done():
		return fmt.Errorf("bus users: %w", setupCtx.Err())
	}
}

// wait returns what ended the following of the tokens.
func (b *busUsers) wait() error { return <-b.done }

// run follows the token bucket and gives the server its users after each
// change, until ctx ends. A change the server does not take stops it
// (and serve): a revoked token must not stay connected.
func (b *busUsers) run(ctx context.Context, tokens *auth.Store) error {
	return tokens.Follow(ctx, func(all []auth.Token, revision uint64) error {
		users := b.ids.users(all)
		names := map[string]string{}
		for _, t := range all {
			if u := tokenUser(t); u != nil {
				names[u.Nkey] = t.Name
			}
		}
		b.mu.Lock()
		b.names = names
		b.mu.Unlock()
		if err := b.users.Set(users); err != nil {
			return fmt.Errorf("bus users: %w", err)
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.applied == 0 {
			b.log.Info("the embedded NATS server's users are those of the tokens", "users", len(users), "revision", revision)
			close(b.first)
		} else {
			b.log.Info("the embedded NATS server's users changed with the tokens", "users", len(users), "revision", revision)
		}
		b.applied = max(revision, 1)
		close(b.changed)
		b.changed = make(chan struct{})
		return nil
	})
}

// token names the token whose NATS user is nkey, "" for none.
func (b *busUsers) token(nkey string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.names[nkey]
}

// waitFor returns once the server's users are as of the token bucket's
// revision or a later one, or when ctx ends.
func (b *busUsers) waitFor(ctx context.Context, revision uint64) error {
	for {
		b.mu.Lock()
		applied, changed := b.applied, b.changed
		b.mu.Unlock()
		if applied >= revision {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}
