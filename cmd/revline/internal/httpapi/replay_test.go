package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/revline/revline/projections"
)

func TestReplaySwitchesInANewGeneration(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.deployed(t, "web", nil)
	s.deployed(t, "api", nil)

	r := s.do(t, "POST", "/v1/replay", nil)
	if r.status != http.StatusOK {
		t.Fatalf("POST /v1/replay: status %d, body %s", r.status, r.body)
	}
	var report projections.ReplayReport
	if err := json.Unmarshal(r.body, &report); err != nil {
		t.Fatal(err)
	}
	if !report.Switched || report.Generation != 2 || s.model.Generation() != 2 || report.EventsRead == 0 || !report.Differences.None() {
		t.Errorf("report %+v, model generation %d; want generation 2 switched in, equal to the old one", report, s.model.Generation())
	}
	if apps := s.model.Apps(); len(apps) != 2 {
		t.Errorf("%d apps after the replay, want 2", len(apps))
	}

	past := s.do(t, "POST", "/v1/replay", map[string]any{"to_sequence": 1})
	if err := json.Unmarshal(past.body, &report); past.status != http.StatusOK || err != nil {
		t.Fatalf("POST /v1/replay to sequence 1: status %d, body %s", past.status, past.body)
	}
	if report.Switched || report.Generation != 2 || report.ToSequence != 1 || report.Differences.Apps.Added != 1 {
		t.Errorf("report to sequence 1: %+v; want generation 2 kept and api added since", report)
	}

	problem(t, s.do(t, "POST", "/v1/replay", map[string]any{"to_sequence": 1 << 40}), http.StatusBadRequest, "beyond_log")
	problem(t, s.do(t, "POST", "/v1/replay", map[string]any{"to": 3}), http.StatusBadRequest, "bad_request")
}
