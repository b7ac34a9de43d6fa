package projections

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
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

// A snapshot written by a build that reads other events is not restored:
// that build may have skipped, or folded otherwise, events this one reads.
func TestASnapshotOfAnotherReaderIsNotRestored(t *testing.T) {
	data, _, err := NewRevisionHistory().Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var snap modelSnapshot
	if err := msgpack.Unmarshal(data, &snap); err != nil {
		t.Fatal(err)
	}
	snap.Checkpoint, snap.Reader = 7, "another build"
	if data, err = msgpack.Marshal(snap); err != nil {
		t.Fatal(err)
	}
	m := NewRevisionHistory()
	if err := m.Restore(data); !errors.Is(err, ErrOtherReader) || m.Checkpoint() != 0 {
		t.Fatalf("restore: %v, checkpoint %d; want ErrOtherReader and the model untouched", err, m.Checkpoint())
	}
}
