package audit

import (
	"context"
	"slices"
	"strings"

	"github.com/revline/revline/events"
)

// ChainReport is what `revline audit verify` found in one app's events.
type ChainReport struct {
	App string `json:"app"`
	// OK is false when a link of the chain is broken.
	OK bool `json:"ok"`
	// Events counts the hashed events, links of the chain.
	Events int `json:"events"`
	// Start is the sequence of the app's first hashed event, where the
	// chain starts (0 if there is none).
	Start uint64 `json:"start,omitempty"`
	// Unhashed counts the events before Start: written before events were
	// hashed, they are not part of the chain.
	Unhashed int `json:"unhashed"`
	// LastSequence and LastHash are those of the chain's last event.
	LastSequence uint64 `json:"last_sequence,omitempty"`
	LastHash     string `json:"last_hash,omitempty"`
	// Broken is the first broken link, if any.
	Broken *BrokenLink `json:"broken,omitempty"`
	// Junk are the sequences of messages on the app's subjects that are
	// not events (no event type): every reader skips them.
	Junk []uint64 `json:"junk,omitempty"`
	// Undecodable are events this build cannot decode: their links are
	// checked, their content cannot be.
	Undecodable []UndecodableEvent `json:"undecodable,omitempty"`
}

// BrokenLink is an event that does not chain to the one before it, or
// whose content does not match its hash.
type BrokenLink struct {
	Sequence uint64 `json:"sequence"`
	// Reason says which check failed.
	Reason   string `json:"reason"`
	Expected string `json:"expected"`
	Found    string `json:"found"`
}

// UndecodableEvent is an event that could not be decoded, and why.
type UndecodableEvent struct {
	Sequence uint64 `json:"sequence"`
	Error    string `json:"error"`
}

// Reasons of a BrokenLink.
const (
	ReasonPrevHash = "previous hash"
	ReasonNoHash   = "no hash after the chain started"
	ReasonContent  = "content does not match its hash"
)

// ChainVerifier checks one app's chain as its events are given to Add, in
// stream order: it does no I/O.
type ChainVerifier struct {
	report ChainReport
	prev   string // the hash the next event must chain from; "" before the chain starts
}

// NewChainVerifier returns a verifier of app's chain.
func NewChainVerifier(app string) *ChainVerifier {
	return &ChainVerifier{report: ChainReport{App: app}}
}

// Add checks the next event of the app, as a events.FollowFunc receives
// it. After the first broken link it goes on from the event that broke
// it, to count and list the rest.
func (v *ChainVerifier) Add(env events.Envelope, decodeErr error) {
	r := &v.report
	switch {
	case decodeErr != nil && env.Type == "":
		r.Junk = append(r.Junk, env.Sequence)
		return
	case env.Hash == "" && v.prev == "":
		r.Unhashed++
		return
	case env.Hash == "":
		v.broke(env.Sequence, ReasonNoHash, v.prev, "")
		return
	}
	if v.prev == "" {
		v.prev, r.Start = events.ZeroHash, env.Sequence
	}
	r.Events++
	if env.PrevHash != v.prev {
		v.broke(env.Sequence, ReasonPrevHash, v.prev, env.PrevHash)
	}
	if decodeErr != nil {
		r.Undecodable = append(r.Undecodable, UndecodableEvent{Sequence: env.Sequence, Error: decodeErr.Error()})
	} else if want := events.EventHash(env); want != env.Hash {
		v.broke(env.Sequence, ReasonContent, want, env.Hash)
	}
	v.prev, r.LastSequence, r.LastHash = env.Hash, env.Sequence, env.Hash
}

func (v *ChainVerifier) broke(seq uint64, reason, expected, found string) {
	if v.report.Broken == nil {
		v.report.Broken = &BrokenLink{Sequence: seq, Reason: reason, Expected: expected, Found: found}
	}
}

// Report returns what the events added so far show.
func (v *ChainVerifier) Report() ChainReport {
	r := v.report
	r.OK = r.Broken == nil
	return r
}

// VerifyChains reads the log up to its current end and checks the chain
// of app ("": of every app), returning one report per app, by name.
func VerifyChains(ctx context.Context, log Log, app string) ([]ChainReport, error) {
	end, err := lastSequence(ctx, log, app)
	if err != nil {
		return nil, err
	}
	verifiers := map[string]*ChainVerifier{}
	err = scan(ctx, log, app, 1, end, func(env events.Envelope, decodeErr error) error {
		v, ok := verifiers[env.App]
		if !ok {
			v = NewChainVerifier(env.App)
			verifiers[env.App] = v
		}
		v.Add(env, decodeErr)
		return nil
	})
	if err != nil {
		return nil, err
	}
	reports := make([]ChainReport, 0, len(verifiers))
	for _, v := range verifiers {
		reports = append(reports, v.Report())
	}
	slices.SortFunc(reports, func(a, b ChainReport) int { return strings.Compare(a.App, b.App) })
	return reports, nil
}
