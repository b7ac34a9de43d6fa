package events_test

import (
	"testing"
	"time"

	"github.com/revline/revline/events"
)

// Every time a state holds, in fields, pointers, slices and map values,
// comes back in UTC; unexported fields are left alone.
func TestTimesInUTC(t *testing.T) {
	local := time.Date(2026, 11, 26, 12, 0, 0, 0, time.FixedZone("X", 3600))
	type inner struct{ At time.Time }
	state := struct {
		At     time.Time
		Ptr    *inner
		List   []inner
		ByName map[string]inner
		hidden time.Time
	}{At: local, Ptr: &inner{local}, List: []inner{{local}}, ByName: map[string]inner{"a": {local}}, hidden: local}
	events.TimesInUTC(&state)
	for what, at := range map[string]time.Time{"field": state.At, "pointer": state.Ptr.At, "slice": state.List[0].At, "map": state.ByName["a"].At} {
		if at.Location() != time.UTC || !at.Equal(local) {
			t.Errorf("%s: %v; want %v in UTC", what, at, local)
		}
	}
	if state.hidden.Location() == time.UTC {
		t.Error("an unexported field was changed")
	}
}
