package cli

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/projections"
)

// jsonKeys are the keys encoding/json gives a value of type t, omitempty
// ones included, sorted; embedded structs are flattened as encoding/json
// does.
func jsonKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported() && !f.Anonymous:
			continue
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			keys = append(keys, jsonKeys(f.Type)...)
			continue
		case name == "":
			name = f.Name
		}
		keys = append(keys, name)
	}
	slices.Sort(keys)
	return keys
}

// The JSON shapes of -o json, as README's "JSON output" documents them:
// a change here is a change of the CLI's interface, to make on purpose
// (and in README) or not at all.
func TestJSONShapes(t *testing.T) {
	t.Parallel()
	outcome := []string{"app", "sequence", "status"}
	for _, tc := range []struct {
		shape string
		value any
		keys  string
	}{
		{"app", projections.AppView{}, "concurrency_buffer concurrency_buffer_perc current_revision keep_alive max_concurrency min_concurrency name request_timeout revisions runners scaling_delay suspended updated_at updated_by"},
		{"revision", projections.RevisionView{}, "annotations command concurrency_buffer concurrency_buffer_perc crash_backoff created_at created_by current deleted fail_reason keep_alive last_crash machine_type max_concurrency max_multiplexing message min_concurrency number request_timeout restarts revision_id rolled_back_to runners scaling_delay startup_timeout status"},
		{"runner", projections.RunnerView{}, "expires_at in_flight last_crash pid port restarts revision_id runner_id started_at state updated_at"},
		{"rollout", rolloutOutcome{}, "app dropped_requests force reason replaced rollout_id sequence status"},
		{"outcome of scale, suspend, resume", control.ChangeResult{}, "app message ready_runners sequence status"},
		{"outcome of set-rev", control.SwitchResult{}, "app message number ready_runners revision_id sequence status"},
		{"outcome of runners stop, kill", control.StopResult{}, "app message reason runner_id sequence status stopped"},
		{"outcome of secrets set, unset", control.SecretResult{}, "app message name sequence status version"},
		{"outcome of deploy", deployOutcome{}, "app duplicate number reason revision_id rolled_back_to rolled_back_to_number sequence status"},
		{"outcome of delete-rev", deleteOutcome{}, "app number revision_id sequence status"},
		{"outcome of apps delete", control.DeleteAppResult{}, "app message purged_secrets sequence status"},
	} {
		got := jsonKeys(reflect.TypeOf(tc.value))
		if strings.Join(got, " ") != tc.keys {
			t.Errorf("%s: keys\n%s\nwant\n%s", tc.shape, strings.Join(got, " "), tc.keys)
		}
		if strings.HasPrefix(tc.shape, "outcome") || tc.shape == "rollout" {
			for _, key := range outcome {
				if !slices.Contains(got, key) {
					t.Errorf("%s has no %q: every outcome names the app, its status and its last event", tc.shape, key)
				}
			}
		}
	}
}

// A list with nothing in it is [] (as the HTTP API answers), never null.
func TestEmptyListsAreEmptyArrays(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	var none []projections.RunnerView
	if err := printJSON(&b, none); err != nil || strings.TrimSpace(b.String()) != "[]" {
		t.Fatalf("printJSON(nil runners) = %q, %v; want []", b.String(), err)
	}
}
