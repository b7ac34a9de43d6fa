package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/revline/revline/events"
)

// maxExportLine bounds one line of an export (an event's record).
const maxExportLine = 4 << 20

// ExportSummary is what CheckExport found in an export that holds
// together.
type ExportSummary struct {
	Records int `json:"records"`
	// First and Last are the first and last sequences.
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
	// Chains are each aggregate's chain as the export ends it: compare
	// LastHash with `revline audit verify` on the live log to know that
	// nothing was cut off the end.
	Chains []ChainReport `json:"chains"`
}

// ExportError is the first problem CheckExport found: on which line
// (from 1), at which sequence (0 if unknown), and what.
type ExportError struct {
	Line     int
	Sequence uint64
	Reason   string
}

// Error implements the error interface.
func (e *ExportError) Error() string {
	if e.Sequence == 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
	}
	return fmt.Sprintf("line %d (sequence %d): %s", e.Line, e.Sequence, e.Reason)
}

// CheckExport reads back an export of the log (`revline audit -o
// jsonl`, one Record a line) and checks that it is complete and
// consistent, offline: every line a record whose payload reg decodes
// (upcast to the current schema version) and equals the stored payload
// decoded and upcast; sequences increasing; each aggregate's hash chain
// starting from its first event and unbroken, every hash matching its
// event's content. An export of the whole log (app "") has no gap in its
// sequences; one of app (`revline audit APP -o jsonl`) holds only app's
// events, with gaps where the other apps' were. It returns the first
// problem as an *ExportError, or read errors as they are.
func CheckExport(r io.Reader, reg *events.Registry, app string) (ExportSummary, error) {
	var (
		sum       ExportSummary
		chains    = map[string]*ChainVerifier{}
		lineCount = 0
	)
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 0, 64<<10), maxExportLine)
	for scanner.Scan() {
		lineCount++
		line := bytes.TrimSpace(scanner.Bytes())
		if len(line) == 0 {
			continue
		}
		rec, err := DecodeRecord(reg, line)
		if err != nil {
			return sum, &ExportError{Line: lineCount, Reason: "not a record of `revline audit -o jsonl`: " + err.Error()}
		}
		bad := func(format string, args ...any) error {
			return &ExportError{Line: lineCount, Sequence: rec.Sequence, Reason: fmt.Sprintf(format, args...)}
		}
		switch {
		case rec.Sequence == 0:
			return sum, bad("no sequence")
		case sum.Records > 0 && rec.Sequence <= sum.Last:
			return sum, bad("sequence %d after %d: sequences must increase (a line repeated or moved)", rec.Sequence, sum.Last)
		case app == "" && sum.Records > 0 && rec.Sequence != sum.Last+1:
			return sum, bad("events %d to %d are missing (an export of the whole log holds every event; one filtered by type, actor, revision or time cannot be checked)", sum.Last+1, rec.Sequence-1)
		case app != "" && rec.App != app:
			return sum, bad("an event of %q in an export of app %q", rec.App, app)
		case sum.Records == 0:
			sum.First = rec.Sequence
		}
		sum.Records, sum.Last = sum.Records+1, rec.Sequence
		if _, seen := chains[rec.App]; !seen {
			chains[rec.App] = NewChainVerifier(rec.App)
		}
		if err := checkRecord(reg, rec, chains[rec.App]); err != nil {
			return sum, bad("%s", err)
		}
	}
	if err := scanner.Err(); err != nil {
		return sum, fmt.Errorf("read the export after line %d: %w", lineCount, err)
	}
	if sum.Records == 0 {
		return sum, errors.New("the export holds no event")
	}
	for _, app := range slices.Sorted(maps.Keys(chains)) {
		sum.Chains = append(sum.Chains, chains[app].Report())
	}
	return sum, nil
}

// checkRecord checks rec's payload against its stored form and its link
// in its app's chain v.
func checkRecord(reg *events.Registry, rec Record, v *ChainVerifier) error {
	if rec.Error == "" {
		if rec.StoredPayload == nil {
			return errors.New("no stored_payload: the export was written by an older Revline; export it again")
		}
		stored, err := reg.DecodeEventAt(rec.Type, storedVersionOf(rec), rec.StoredPayload)
		if err != nil {
			return fmt.Errorf("the stored payload: %w", err)
		}
		want, _ := json.Marshal(stored)
		got, _ := json.Marshal(rec.Payload)
		if !bytes.Equal(want, got) {
			return errors.New("the payload differs from the stored payload (changed after it was exported)")
		}
	}
	env := events.Envelope{
		EventID: rec.ID, App: rec.App, Type: rec.Type, SchemaVersion: rec.SchemaVersion,
		StoredSchemaVersion: rec.StoredSchemaVersion, OccurredAt: rec.Time, Sequence: rec.Sequence,
		Metadata: events.Metadata{Actor: rec.Actor, CorrelationID: rec.CorrelationID, CausationID: rec.CausationID},
		PrevHash: rec.PrevHash, Hash: rec.Hash, Payload: rec.StoredPayload,
	}
	var decodeErr error
	if rec.Error != "" {
		decodeErr = errors.New(rec.Error)
	}
	broken := v.report.Broken
	if v.prev == "" && rec.Hash != "" && rec.PrevHash != events.ZeroHash {
		return fmt.Errorf("app %q's chain starts here from hash %s, not from the start: the export misses the app's earlier events", rec.App, rec.PrevHash)
	}
	v.Add(env, decodeErr)
	if b := v.report.Broken; b != nil && broken == nil {
		switch b.Reason {
		case ReasonContent:
			return fmt.Errorf("app %q: the event does not match its hash (changed after it was written)", rec.App)
		case ReasonPrevHash:
			return fmt.Errorf("app %q: the event does not chain to the app's one before it in the export (expected previous hash %s, found %s): an event is missing, added or moved", rec.App, b.Expected, b.Found)
		default:
			return fmt.Errorf("app %q: %s", rec.App, b.Reason)
		}
	}
	return nil
}

// storedVersionOf is the schema version rec's stored payload has.
func storedVersionOf(rec Record) int {
	if rec.StoredSchemaVersion != 0 {
		return rec.StoredSchemaVersion
	}
	return rec.SchemaVersion
}
