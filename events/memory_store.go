package events

import (
	"context"
	"sync"
)

// MemoryStore is an in-memory Store with the same semantics as the
// JetStream one. It is meant for unit tests.
type MemoryStore struct {
	mu      sync.Mutex
	log     []Envelope // log[i].Sequence == i+1
	lastSeq map[string]uint64
	changed chan struct{} // closed and replaced on every append
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{lastSeq: map[string]uint64{}, changed: make(chan struct{})}
}

// Append implements Appender.
func (s *MemoryStore) Append(ctx context.Context, app string, expected uint64, events []Envelope) (AppendResult, error) {
	if err := checkBatch(app, events); err != nil {
		return AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastSeq[app] != expected {
		if dup, ok := findDuplicate(s.loadLocked(app, expected), events[0].CausationID); ok {
			return dup, nil
		}
		return AppendResult{}, &ConflictError{App: app, Expected: expected}
	}
	res := AppendResult{FirstSequence: uint64(len(s.log)) + 1}
	for _, env := range events {
		env.Sequence = uint64(len(s.log)) + 1
		s.log = append(s.log, env)
	}
	res.LastSequence = uint64(len(s.log))
	s.lastSeq[app] = res.LastSequence
	close(s.changed)
	s.changed = make(chan struct{})
	return res, nil
}

// Load implements AppLoader.
func (s *MemoryStore) Load(ctx context.Context, app string, after uint64) ([]Envelope, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadLocked(app, after), nil
}

func (s *MemoryStore) loadLocked(app string, after uint64) []Envelope {
	var out []Envelope
	for _, env := range s.log[min(after, uint64(len(s.log))):] {
		if env.App == app {
			out = append(out, env)
		}
	}
	return out
}

// Follow implements Follower.
func (s *MemoryStore) Follow(ctx context.Context, from uint64, fn FollowFunc) error {
	next := max(from, 1)
	for {
		s.mu.Lock()
		batch := append([]Envelope(nil), s.log[min(next-1, uint64(len(s.log))):]...)
		changed := s.changed
		s.mu.Unlock()
		for _, env := range batch {
			if err := fn(env, nil); err != nil {
				return err
			}
			next = env.Sequence + 1
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}
