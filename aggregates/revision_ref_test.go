package aggregates_test

import (
	"errors"
	"testing"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
)

// Revisions whose ids share their first 8 characters, as UUID v7s made
// within a minute do.
const (
	twinA = "01900000-aaaa-7000-8000-000000000001"
	twinB = "01900000-bbbb-7000-8000-000000000002"
)

func revisionNumberSpecs() []spec {
	return []spec{
		{
			name:  "deploy_records_the_next_number_after_unnumbered_history",
			given: twoRevisions(), // written before numbers: r1 is 1, r2 is 2
			when:  events.Deploy{RevisionID: r3, Command: runCommand},
			then:  evs(created(r3, numbered(3))),
			after: func(t T, s aggregates.App) {
				equal(t, "r1 number", revision(t, s, r1).Number, uint64(1))
				equal(t, "r2 number", revision(t, s, r2).Number, uint64(2))
				equal(t, "r3 number", revision(t, s, r3).Number, uint64(3))
				equal(t, "last number", s.LastNumber, uint64(3))
			},
		},
		{
			name:  "numbers_are_not_reused_after_a_delete",
			given: history(twoRevisions(), evs(created(r3, numbered(3)), failed(r3), deleted(r3), deleted(r1))),
			when:  events.Deploy{RevisionID: revisionUUID(4), Command: runCommand},
			then:  evs(created(revisionUUID(4), numbered(4))),
		},
		{
			name:  "a_recorded_number_wins_over_creation_order",
			given: history(twoRevisions(), evs(created(r3, numbered(7)))),
			when:  events.Deploy{RevisionID: revisionUUID(4), Command: runCommand},
			then:  evs(created(revisionUUID(4), numbered(8))),
		},
		{
			name:  "set_revision_by_v_number",
			given: twoRevisions(),
			when:  events.SetRevision{RevisionID: "v1"},
			then:  evs(rolledBack(r2, r1, cpuCode, quietRuntime)),
		},
		{
			name:  "set_revision_by_bare_number",
			given: twoRevisions(),
			when:  events.SetRevision{RevisionID: "1"},
			then:  evs(rolledBack(r2, r1, cpuCode, quietRuntime)),
		},
		{
			name:  "set_revision_by_unique_prefix",
			given: history(live(twinA), evs(created(twinB), deployed(twinB))),
			when:  events.SetRevision{RevisionID: "01900000-BB"},
			then:  evs(rolledBack(twinA, twinB, events.DefaultCodeParams(), defaultRuntime)),
		},
		{
			name:   "set_revision_to_an_unknown_number_is_rejected",
			given:  twoRevisions(),
			when:   events.SetRevision{RevisionID: "v9"},
			reject: aggregates.CodeRevisionNotFound,
			says:   []string{"v9"},
		},
		{
			name:   "set_revision_by_an_ambiguous_prefix_is_rejected",
			given:  history(live(twinA), evs(created(twinB), deployed(twinB))),
			when:   events.SetRevision{RevisionID: "01900000"},
			reject: aggregates.CodeAmbiguousRevision,
			says:   []string{twinA, twinB, "v3"},
		},
		{
			name:   "set_revision_by_a_short_prefix_is_rejected",
			given:  twoRevisions(),
			when:   events.SetRevision{RevisionID: "019000a"},
			reject: aggregates.CodeRevisionRefTooShort,
			says:   []string{"019000a", "at least 8"},
		},
		{
			name:   "set_revision_to_a_deleted_number_names_it",
			given:  history(twoRevisions(), evs(deleted(r1))),
			when:   events.SetRevision{RevisionID: "v1"},
			reject: aggregates.CodeRevisionDeleted,
			says:   []string{"v1", r1, "deleted"},
		},
		{
			name:  "delete_revision_by_number",
			given: twoRevisions(),
			when:  events.DeleteRevision{RevisionID: "v1"},
			then:  evs(deleted(r1)),
		},
		{
			name:   "deleting_the_current_revision_by_number_is_rejected",
			given:  twoRevisions(),
			when:   events.DeleteRevision{RevisionID: "2"},
			reject: aggregates.CodeRevisionIsCurrent,
			says:   []string{"v2", r2},
		},
	}
}

func TestRevisionNumbers(t *testing.T) { t.Parallel(); run(t, revisionNumberSpecs()) }

func TestParseRevisionNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ref  string
		want uint64
		ok   bool
	}{
		{"v3", 3, true},
		{"V12", 12, true},
		{"3", 3, true},
		{"0003", 3, true},
		{"1234567", 1234567, true},
		{"v12345678", 12345678, true},
		{"12345678", 0, false}, // 8 digits: an id prefix
		{"v", 0, false},
		{"", 0, false},
		{"v-1", 0, false},
		{"3a", 0, false},
		{"v99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, ok := aggregates.ParseRevisionNumber(tt.ref)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRevisionNumber(%q) = %d, %v; want %d, %v", tt.ref, got, ok, tt.want, tt.ok)
		}
	}
}

func TestResolveRevisionRefOfDigitPrefix(t *testing.T) {
	t.Parallel()
	revs := []aggregates.RevisionKey{{ID: "12345678-0000-4000-8000-000000000001", Number: 1}}
	got, err := aggregates.ResolveRevisionRef("demo", "12345678", revs)
	if err != nil || got != revs[0].ID {
		t.Fatalf("ResolveRevisionRef(12345678) = %q, %v; want the id whose prefix it is", got, err)
	}
	if _, err := aggregates.ResolveRevisionRef("demo", "v2", revs); !errors.Is(err, aggregates.ErrRevisionNotFound) {
		t.Fatalf("ResolveRevisionRef(v2) error = %v, want ErrRevisionNotFound", err)
	}
}
