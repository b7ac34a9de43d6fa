package projections

import (
	"maps"
	"slices"

	"github.com/revline/revline/events"
)

// FieldChange is one field that differs between two revisions, with each
// side's value as the CLI shows it ("" for an annotation one side lacks).
type FieldChange struct {
	Field string `json:"field"`
	A     string `json:"a"`
	B     string `json:"b"`
}

// RevisionDiff is what `apps diff` shows: two revisions of an app and what
// differs from the first to the second.
type RevisionDiff struct {
	App     string        `json:"app"`
	A       RevisionRef   `json:"a"`
	B       RevisionRef   `json:"b"`
	Changes []FieldChange `json:"changes"`
}

// RevisionRef names a revision by number and id.
type RevisionRef struct {
	Number     uint64 `json:"number"`
	RevisionID string `json:"revision_id"`
}

// Diff compares revisions a and b of app (DiffRevisions).
func Diff(app string, a, b RevisionView) RevisionDiff {
	d := RevisionDiff{
		App: app, A: RevisionRef{a.Number, a.RevisionID}, B: RevisionRef{b.Number, b.RevisionID},
		Changes: DiffRevisions(a, b),
	}
	if d.Changes == nil {
		d.Changes = []FieldChange{}
	}
	return d
}

// DiffRevisions lists what differs from revision a to revision b: the
// command, the code parameters, the runtime parameters as the views show
// them (effective for the current revision, the last ones used for one
// that was current), the message and each annotation (annotations.KEY),
// in that order.
func DiffRevisions(a, b RevisionView) []FieldChange {
	values := func(v RevisionView) []events.ParamValue {
		return slices.Concat([]events.ParamValue{{Name: "command", Value: v.Command}}, v.CodeParams.Values(), v.RuntimeParams.Values(),
			[]events.ParamValue{{Name: "message", Value: v.Message}})
	}
	var out []FieldChange
	for i, va := range values(a) {
		if vb := values(b)[i]; va.Value != vb.Value {
			out = append(out, FieldChange{Field: va.Name, A: va.Value, B: vb.Value})
		}
	}
	keys := slices.Sorted(maps.Keys(a.Annotations))
	for k := range b.Annotations {
		if _, ok := a.Annotations[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if va, vb := a.Annotations[k], b.Annotations[k]; va != vb {
			out = append(out, FieldChange{Field: "annotations." + k, A: va, B: vb})
		}
	}
	return out
}
