package projections

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Every field of the model's records is in its snapshot: a field added to
// appRecord or revisionRecord and not to appSnapshot or revisionSnapshot
// would be lost by every restart from a snapshot.
func TestTheSnapshotCoversEveryFieldOfTheModel(t *testing.T) {
	names := func(v any) []string {
		var out []string
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			out = append(out, strings.ToLower(typ.Field(i).Name))
		}
		slices.Sort(out)
		return out
	}
	for _, pair := range [][2]any{{appRecord{}, appSnapshot{}}, {revisionRecord{}, revisionSnapshot{}}} {
		if model, snap := names(pair[0]), names(pair[1]); !slices.Equal(model, snap) {
			t.Errorf("%T has fields %v, its snapshot %T has %v: add the field to the snapshot (projections/snapshot.go) and bump SnapshotSchema", pair[0], model, pair[1], snap)
		}
	}
}
