package audit_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/revline/revline/events"
	"github.com/revline/revline/projections/audit"
)

// hashedHistory returns n hashed events of app "web" at sequences 1..n, chained
// by the writer's rules.
func hashedHistory(t *testing.T, n int) []events.Envelope {
	t.Helper()
	envs := make([]events.Envelope, n)
	for i := range envs {
		envs[i] = events.NewEnvelope("web", events.SecretSet{Name: "TOKEN", Version: uint64(i + 1)}, events.Metadata{Actor: "alice"}, time.Now())
	}
	chained, err := events.Chain("", envs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range chained {
		chained[i].Sequence = uint64(i + 1)
	}
	return chained
}

type chainEntry struct {
	env       events.Envelope
	decodeErr error
}

func verifyEntries(entries []chainEntry) audit.ChainReport {
	v := audit.NewChainVerifier("web")
	for _, e := range entries {
		v.Add(e.env, e.decodeErr)
	}
	return v.Report()
}

func chainEntries(envs []events.Envelope) []chainEntry {
	out := make([]chainEntry, len(envs))
	for i, env := range envs {
		out[i] = chainEntry{env: env}
	}
	return out
}

func TestChainVerifier(t *testing.T) {
	t.Parallel()
	h := hashedHistory(t, 5)
	undecodable := errors.New("unknown event type")
	for _, tc := range []struct {
		name    string
		entries []chainEntry
		// broken is the sequence and reason of the first broken link, if any.
		broken uint64
		reason string
		check  func(audit.ChainReport) bool
	}{
		{name: "intact", entries: chainEntries(h), check: func(r audit.ChainReport) bool {
			return r.Events == 5 && r.Start == 1 && r.LastSequence == 5 && r.LastHash == h[4].Hash
		}},
		{name: "an event removed", entries: chainEntries(slices.Delete(slices.Clone(h), 2, 3)), broken: 4, reason: audit.ReasonPrevHash},
		{name: "two events swapped", entries: chainEntries([]events.Envelope{h[0], h[2], h[1], h[3]}), broken: 3, reason: audit.ReasonPrevHash},
		{name: "content changed", entries: func() []chainEntry {
			changed := slices.Clone(h)
			changed[3].Actor = "mallory"
			return chainEntries(changed)
		}(), broken: 4, reason: audit.ReasonContent},
		{name: "an unhashed event after the start", entries: func() []chainEntry {
			e := chainEntries(h)
			plain := h[2]
			plain.Hash, plain.PrevHash, plain.Sequence = "", "", 6
			return append(e[:3], append([]chainEntry{{env: plain}}, e[3:]...)...)
		}(), broken: 6, reason: audit.ReasonNoHash},
		{name: "unhashed prefix and junk", entries: func() []chainEntry {
			legacy := events.NewEnvelope("web", events.AppResumed{}, events.Metadata{}, time.Now())
			junk := events.Envelope{App: "web"}
			legacy.Sequence, junk.Sequence = 0, 0
			return append([]chainEntry{{env: legacy}, {env: junk, decodeErr: undecodable}}, chainEntries(h)...)
		}(), check: func(r audit.ChainReport) bool {
			return r.Unhashed == 1 && len(r.Junk) == 1 && r.Events == 5 && r.Start == 1
		}},
		{name: "an undecodable event keeps its link", entries: func() []chainEntry {
			e := chainEntries(h)
			e[2].env.Event, e[2].env.Payload, e[2].decodeErr = nil, nil, undecodable
			return e
		}(), check: func(r audit.ChainReport) bool {
			return len(r.Undecodable) == 1 && r.Undecodable[0].Sequence == 3 && r.Events == 5
		}},
	} {
		r := verifyEntries(tc.entries)
		switch {
		case tc.broken == 0 && !r.OK:
			t.Errorf("%s: broken %+v; want OK", tc.name, r.Broken)
		case tc.broken != 0 && (r.OK || r.Broken.Sequence != tc.broken || r.Broken.Reason != tc.reason):
			t.Errorf("%s: report %+v (broken %+v); want broken at %d: %s", tc.name, r, r.Broken, tc.broken, tc.reason)
		case tc.check != nil && !tc.check(r):
			t.Errorf("%s: report %+v", tc.name, r)
		}
	}
}
