package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/cmd/revline/internal/httpapi"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
)

func (s *stack) caughtUp(t *testing.T, seq uint64) {
	t.Helper()
	if err := s.model.WaitFor(testContext(t), seq); err != nil {
		t.Fatal(err)
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string { return slices.Sorted(slices.Values(s)) }

func TestListAppsAndRevisionsJSONShape(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	if r := s.do(t, "GET", "/v1/apps", nil); r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("no apps: status %d, body %s; want 200 []", r.status, r.body)
	}
	id := s.deployed(t, "web", map[string]any{"machine_type": "GPU-A100", "keep_alive": 30, "message": "first", "annotations": map[string]string{"git": "abc123"}})

	apps := ok[[]map[string]any](t, s.do(t, "GET", "/v1/apps", nil), http.StatusOK)
	if len(apps) != 1 {
		t.Fatalf("apps = %v", apps)
	}
	wantAppKeys := sorted("name", "current_revision", "keep_alive", "min_concurrency", "max_concurrency", "concurrency_buffer", "concurrency_buffer_perc", "scaling_delay", "request_timeout", "revisions", "runners", "suspended", "updated_at", "updated_by")
	if got := keys(apps[0]); !slices.Equal(got, wantAppKeys) {
		t.Fatalf("app keys = %v, want %v", got, wantAppKeys)
	}
	if apps[0]["name"] != "web" || apps[0]["current_revision"] != id || apps[0]["keep_alive"] != 30.0 || apps[0]["revisions"] != 1.0 {
		t.Fatalf("app = %v", apps[0])
	}

	revs := ok[[]map[string]any](t, s.do(t, "GET", "/v1/apps/web/revisions", nil), http.StatusOK)
	if len(revs) != 1 {
		t.Fatalf("revisions = %v", revs)
	}
	wantRevKeys := sorted("number", "revision_id", "status", "current", "created_at", "created_by", "machine_type", "max_multiplexing", "startup_timeout",
		"keep_alive", "min_concurrency", "max_concurrency", "concurrency_buffer", "concurrency_buffer_perc", "scaling_delay", "request_timeout", "message", "annotations", "command", "runners", "crash_backoff", "restarts", "fail_reason", "deleted")
	if got := keys(revs[0]); !slices.Equal(got, wantRevKeys) {
		t.Fatalf("revision keys = %v, want %v", got, wantRevKeys)
	}
	rev := revs[0]
	if rev["revision_id"] != id || rev["number"] != 1.0 || rev["status"] != "deployed" || rev["current"] != true || rev["created_by"] != "token:test" ||
		rev["machine_type"] != "GPU-A100" || rev["startup_timeout"] != 60.0 || rev["keep_alive"] != 30.0 || rev["message"] != "first" {
		t.Fatalf("revision = %v", rev)
	}

	byPrefix := ok[projections.RevisionView](t, s.do(t, "GET", "/v1/apps/web/revisions/"+id[:8], nil), http.StatusOK)
	if byPrefix.RevisionID != id || byPrefix.Annotations["git"] != "abc123" {
		t.Fatalf("revision by prefix = %+v", byPrefix)
	}
	problem(t, s.do(t, "GET", "/v1/apps/web/revisions/abc", nil), http.StatusBadRequest, "revision_ref_too_short")
	problem(t, s.do(t, "GET", "/v1/apps/web/revisions/"+uuid.NewString(), nil), http.StatusNotFound, "revision_not_found")
	problem(t, s.do(t, "GET", "/v1/apps/nope/revisions", nil), http.StatusNotFound, "app_not_found")
	problem(t, s.do(t, "GET", "/v1/apps/web/revisions?min_sequence=soon", nil), http.StatusBadRequest, "bad_request")
}

func TestDeployWithoutWaitIsAccepted(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.do(t, "POST", "/v1/apps/web/deploy", map[string]any{"command": "serve", "wait": false})
	res := ok[control.DeployResult](t, r, http.StatusAccepted)
	if res.RevisionID == "" || res.Status != events.StatusDeploying || res.Sequence == 0 {
		t.Fatalf("result = %+v", res)
	}
	if loc := r.header.Get("Location"); loc != "/v1/apps/web/revisions/"+res.RevisionID {
		t.Fatalf("Location = %q", loc)
	}
	rev := ok[projections.RevisionView](t, s.do(t, "GET", fmt.Sprintf("%s?min_sequence=%d", r.header.Get("Location"), res.Sequence), nil), http.StatusOK)
	if rev.Status != events.StatusDeploying || rev.Current {
		t.Fatalf("revision = %+v", rev)
	}
}

func TestDeployWaitAnswersCreatedOnceDeployed(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	done := s.settleNextDeploy(t, "web", "")
	res := ok[control.DeployResult](t, s.do(t, "POST", "/v1/apps/web/deploy", map[string]any{"command": "serve", "wait": true}), http.StatusCreated)
	await(t, done)
	if res.Status != events.StatusDeployed {
		t.Fatalf("result = %+v", res)
	}
	app := ok[[]projections.AppView](t, s.do(t, "GET", fmt.Sprintf("/v1/apps?min_sequence=%d", res.Sequence), nil), http.StatusOK)
	if len(app) != 1 || app[0].CurrentRevision != res.RevisionID {
		t.Fatalf("apps = %+v", app)
	}
}

func TestDeployWaitForFailedRevisionIsUnprocessable(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	done := s.settleNextDeploy(t, "web", "exited with status 3 before listening")
	p := problem(t, s.do(t, "POST", "/v1/apps/web/deploy", map[string]any{"command": "false", "wait": true}), http.StatusUnprocessableEntity, "deploy_failed")
	await(t, done)
	if p.RevisionID == "" || !strings.Contains(p.Detail, "exited with status 3") {
		t.Fatalf("problem = %+v", p)
	}
	if p.Sequence == 0 {
		t.Fatalf("problem = %+v, want the sequence of the failure", p)
	}
	rev := ok[projections.RevisionView](t, s.do(t, "GET", fmt.Sprintf("/v1/apps/web/revisions/%s?min_sequence=%d", p.RevisionID, p.Sequence), nil), http.StatusOK)
	if rev.Status != events.StatusFailed || rev.Current {
		t.Fatalf("failed revision = %+v", rev)
	}
}

func TestIdempotencyKeyDeploysOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	body := map[string]any{"command": "serve"}
	first := ok[control.DeployResult](t, s.do(t, "POST", "/v1/apps/web/deploy", body, httpapi.IdempotencyKeyHeader, "release-42"), http.StatusAccepted)
	again := ok[control.DeployResult](t, s.do(t, "POST", "/v1/apps/web/deploy", body, httpapi.IdempotencyKeyHeader, "release-42"), http.StatusAccepted)
	inBody := ok[control.DeployResult](t, s.do(t, "POST", "/v1/apps/web/deploy", map[string]any{"command": "serve", "idempotency_key": "release-42"}), http.StatusAccepted)
	if again.RevisionID != first.RevisionID || inBody.RevisionID != first.RevisionID {
		t.Fatalf("revisions %s, %s, %s: want one", first.RevisionID, again.RevisionID, inBody.RevisionID)
	}
	revs := ok[[]projections.RevisionView](t, s.do(t, "GET", fmt.Sprintf("/v1/apps/web/revisions?min_sequence=%d", first.Sequence), nil), http.StatusOK)
	if len(revs) != 1 {
		t.Fatalf("revisions = %+v, want one", revs)
	}
	p := problem(t, s.do(t, "POST", "/v1/apps/web/deploy", map[string]any{"command": "serve", "idempotency_key": "a"}, httpapi.IdempotencyKeyHeader, "b"), http.StatusBadRequest, "bad_request")
	if !strings.Contains(p.Detail, "differ") {
		t.Fatalf("problem = %+v", p)
	}
}

func TestSetRevRollbackInheritsRuntimeParams(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	first := s.deployed(t, "web", map[string]any{"machine_type": "GPU-A100", "keep_alive": 30})
	scaled := ok[control.ChangeResult](t, s.do(t, "POST", "/v1/apps/web/scale", map[string]any{"keep_alive": "5m"}), http.StatusOK)
	if scaled.Status != events.OutcomeAccepted {
		t.Fatalf("scale = %+v", scaled)
	}
	s.caughtUp(t, scaled.Sequence)
	second := s.deployed(t, "web", map[string]any{"machine_type": "XS", "keep_alive": 999})

	res := ok[control.SwitchResult](t, s.do(t, "POST", "/v1/apps/web/set-rev", map[string]any{"revision": first[:28], "message": "bad release"}), http.StatusOK)
	if res.RevisionID != first || res.Status != events.OutcomeAccepted || res.Sequence == 0 {
		t.Fatalf("set-rev = %+v", res)
	}
	apps := ok[[]projections.AppView](t, s.do(t, "GET", fmt.Sprintf("/v1/apps?min_sequence=%d", res.Sequence), nil), http.StatusOK)
	if apps[0].CurrentRevision != first || apps[0].KeepAlive != 300 {
		t.Fatalf("after rollback from %s: app = %+v, want current %s with keep_alive 300 kept from the scale", second, apps[0], first)
	}
	rev := ok[projections.RevisionView](t, s.do(t, "GET", "/v1/apps/web/revisions/"+first, nil), http.StatusOK)
	if !rev.Current || rev.MachineType != "GPU-A100" || rev.KeepAlive != 300 {
		t.Fatalf("rolled-back revision = %+v, want its own machine type and the inherited keep_alive", rev)
	}

	noop := ok[control.SwitchResult](t, s.do(t, "POST", "/v1/apps/web/set-rev", map[string]any{"revision": first}), http.StatusOK)
	if noop.Status != events.OutcomeNoOp || !strings.Contains(noop.Message, "already") {
		t.Fatalf("set-rev to the current revision = %+v, want status noop", noop)
	}
	problem(t, s.do(t, "POST", "/v1/apps/web/set-rev", map[string]any{"strategy": "rolling"}), http.StatusBadRequest, "bad_request")
	problem(t, s.do(t, "POST", "/v1/apps/web/set-rev", map[string]any{"revision": second, "strategy": "sideways"}), http.StatusBadRequest, "invalid_argument")
}

func TestDeleteRevision(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	old := s.deployed(t, "web", nil)
	current := s.deployed(t, "web", nil)

	p := problem(t, s.do(t, "DELETE", "/v1/apps/web/revisions/"+current, nil), http.StatusConflict, "revision_is_current")
	if !strings.Contains(p.Detail, "current revision") || !strings.Contains(p.Detail, "set-rev") {
		t.Fatalf("problem = %+v, want a detail saying why and what to do", p)
	}
	problem(t, s.do(t, "DELETE", "/v1/apps/web/revisions/"+uuid.NewString(), nil), http.StatusNotFound, "revision_not_found")
	problem(t, s.do(t, "DELETE", "/v1/apps/nope/revisions/"+old, nil), http.StatusNotFound, "app_not_found")

	res := ok[control.DeleteResult](t, s.do(t, "DELETE", "/v1/apps/web/revisions/"+old[:28], nil), http.StatusOK)
	if res.RevisionID != old || res.App != "web" {
		t.Fatalf("delete = %+v", res)
	}
	revs := ok[[]projections.RevisionView](t, s.do(t, "GET", fmt.Sprintf("/v1/apps/web/revisions?min_sequence=%d", res.Sequence), nil), http.StatusOK)
	if len(revs) != 1 || revs[0].RevisionID != current {
		t.Fatalf("revisions after delete = %+v", revs)
	}
	if rev := ok[projections.RevisionView](t, s.do(t, "GET", "/v1/apps/web/revisions/"+old, nil), http.StatusOK); !rev.Deleted {
		t.Fatalf("deleted revision by id = %+v", rev)
	}
	problem(t, s.do(t, "DELETE", "/v1/apps/web/revisions/"+old, nil), http.StatusConflict, "revision_already_deleted")
}

func TestInvalidAppNameIsRefusedFirst(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	for _, name := range []string{"a.b", strings.Repeat("a", 300), "Web", "-web", "a%2Fb", "a*b"} {
		for _, req := range []struct{ method, path string }{
			{"GET", "/v1/apps/" + name + "/revisions"},
			{"GET", "/v1/apps/" + name + "/runners"},
			{"POST", "/v1/apps/" + name + "/deploy"}, // no body: the name is checked first
			{"DELETE", "/v1/apps/" + name + "/revisions/0123456789"},
		} {
			problem(t, s.do(t, req.method, req.path, nil), http.StatusBadRequest, "invalid_app_name")
		}
	}
}

func TestBadRequestBodies(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	cases := []struct {
		name, path, body string
		status           int
		code, detail     string
	}{
		{"malformed JSON", "deploy", `{"command": "serve"`, http.StatusBadRequest, "bad_request", "not valid JSON"},
		{"not JSON", "deploy", `command=serve`, http.StatusBadRequest, "bad_request", "not valid JSON"},
		{"unknown field", "deploy", `{"command": "serve", "colour": "red"}`, http.StatusBadRequest, "bad_request", `unknown field "colour"`},
		{"wrong type", "deploy", `{"command": 5}`, http.StatusBadRequest, "bad_request", `"command" must be a string`},
		{"wrong type of an embedded field", "deploy", `{"command": "serve", "min_concurrency": "two"}`, http.StatusBadRequest, "bad_request", `field "min_concurrency" must be an integer`},
		{"not an object", "deploy", `["serve"]`, http.StatusBadRequest, "bad_request", "JSON object"},
		{"trailing data", "deploy", `{"command": "serve"} {}`, http.StatusBadRequest, "bad_request", "after it"},
		{"empty body", "deploy", ``, http.StatusBadRequest, "bad_request", "needs a JSON body"},
		{"negative min_concurrency", "deploy", `{"command": "serve", "min_concurrency": -1}`, http.StatusBadRequest, "invalid_argument", "min_concurrency"},
		{"negative duration", "deploy", `{"command": "serve", "keep_alive": -5}`, http.StatusBadRequest, "bad_request", "negative"},
		{"fractional duration", "deploy", `{"command": "serve", "request_timeout": "1.5s"}`, http.StatusBadRequest, "bad_request", "whole number of seconds"},
		{"no command", "deploy", `{"message": "hi"}`, http.StatusBadRequest, "invalid_argument", "command"},
		{"too large", "deploy", `{"command": "` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`, http.StatusRequestEntityTooLarge, "request_too_large", "larger than"},
		{"a command too large for the bus", "deploy", `{"command": "` + strings.Repeat("x", 200<<10) + `"}`, http.StatusRequestEntityTooLarge, "request_too_large", "command too large"},
		{"rollout unknown field", "rollout", `{"graceful": true}`, http.StatusBadRequest, "bad_request", "graceful"},
		{"suspend with a body", "suspend", `{"now": true}`, http.StatusBadRequest, "bad_request", "now"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := problem(t, s.do(t, "POST", "/v1/apps/web/"+c.path, c.body), c.status, c.code)
			if !strings.Contains(p.Detail, c.detail) {
				t.Fatalf("detail %q does not mention %q", p.Detail, c.detail)
			}
		})
	}
	if apps := ok[[]projections.AppView](t, s.do(t, "GET", "/v1/apps", nil), http.StatusOK); len(apps) != 0 {
		t.Fatalf("bad requests created apps: %+v", apps)
	}
}

func TestScale(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	problem(t, s.do(t, "POST", "/v1/apps/web/scale", map[string]any{"min_concurrency": 1}), http.StatusNotFound, "app_not_found")
	s.deployed(t, "web", nil)

	res := ok[control.ChangeResult](t, s.do(t, "POST", "/v1/apps/web/scale", map[string]any{"min_concurrency": 2, "max_concurrency": 5, "keep_alive": "2m", "request_timeout": 90}), http.StatusOK)
	if res.App != "web" || res.Status != events.OutcomeAccepted || res.Sequence == 0 {
		t.Fatalf("scale = %+v", res)
	}
	apps := ok[[]projections.AppView](t, s.do(t, "GET", fmt.Sprintf("/v1/apps?min_sequence=%d", res.Sequence), nil), http.StatusOK)
	want := events.RuntimeParams{KeepAlive: 120, MinConcurrency: 2, MaxConcurrency: 5, ConcurrencyBuffer: 0, RequestTimeout: 90}
	if apps[0].RuntimeParams != want {
		t.Fatalf("runtime = %+v, want %+v", apps[0].RuntimeParams, want)
	}
	same := ok[control.ChangeResult](t, s.do(t, "POST", "/v1/apps/web/scale", map[string]any{"min_concurrency": 2}), http.StatusOK)
	if same.Status != events.OutcomeNoOp {
		t.Fatalf("scale to the same value = %+v, want noop", same)
	}
	problem(t, s.do(t, "POST", "/v1/apps/web/scale", map[string]any{}), http.StatusBadRequest, "invalid_argument")
	problem(t, s.do(t, "POST", "/v1/apps/web/scale", map[string]any{"min_concurrency": -1}), http.StatusBadRequest, "invalid_argument")
	problem(t, s.do(t, "POST", "/v1/apps/web/scale", map[string]any{"min_concurrency": 9}), http.StatusBadRequest, "invalid_argument")
}

func TestSuspendAndResume(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	problem(t, s.do(t, "POST", "/v1/apps/web/suspend", nil), http.StatusConflict, "no_current_revision")
	id := s.deployed(t, "web", nil)

	res := ok[control.ChangeResult](t, s.do(t, "POST", "/v1/apps/web/suspend", nil), http.StatusOK)
	if res.Status != events.OutcomeAccepted {
		t.Fatalf("suspend = %+v", res)
	}
	rev := ok[projections.RevisionView](t, s.do(t, "GET", fmt.Sprintf("/v1/apps/web/revisions/%s?min_sequence=%d", id, res.Sequence), nil), http.StatusOK)
	if rev.Status != events.StatusSuspended {
		t.Fatalf("revision of a suspended app = %+v", rev)
	}
	if again := ok[control.ChangeResult](t, s.do(t, "POST", "/v1/apps/web/suspend", "{}"), http.StatusOK); again.Status != events.OutcomeNoOp {
		t.Fatalf("suspend twice = %+v, want noop", again)
	}
	problem(t, s.do(t, "POST", "/v1/apps/web/deploy", map[string]any{"command": "serve"}), http.StatusConflict, "app_suspended")
	if resumed := ok[control.ChangeResult](t, s.do(t, "POST", "/v1/apps/web/resume", nil), http.StatusOK); resumed.Status != events.OutcomeAccepted {
		t.Fatalf("resume = %+v", resumed)
	}
}

func TestDeleteApp(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	problem(t, s.do(t, "DELETE", "/v1/apps/web", nil), http.StatusNotFound, "app_not_found")
	s.deployed(t, "web", nil)
	s.deployed(t, "api", nil)
	problem(t, s.do(t, "DELETE", "/v1/apps/web", map[string]any{"reason": "x", "now": true}), http.StatusBadRequest, "bad_request")

	res := ok[control.DeleteAppResult](t, s.do(t, "DELETE", "/v1/apps/web", map[string]any{"reason": "made by mistake"}), http.StatusOK)
	if res.Status != events.OutcomeAccepted || res.Sequence == 0 {
		t.Fatalf("delete = %+v", res)
	}
	apps := ok[[]projections.AppView](t, s.do(t, "GET", fmt.Sprintf("/v1/apps?min_sequence=%d", res.Sequence), nil), http.StatusOK)
	if len(apps) != 1 || apps[0].Name != "api" {
		t.Fatalf("apps after the deletion = %+v, want api alone", apps)
	}
	p := problem(t, s.do(t, "GET", fmt.Sprintf("/v1/apps/web/revisions?min_sequence=%d", res.Sequence), nil), http.StatusConflict, "app_deleted")
	if !strings.Contains(p.Detail, "token:test") || !strings.Contains(p.Detail, "made by mistake") {
		t.Errorf("list-rev of a deleted app: %+v, want who and why", p)
	}
	problem(t, s.do(t, "POST", "/v1/apps/web/scale", map[string]any{"min_concurrency": 1}), http.StatusConflict, "app_deleted")
	if again := ok[control.DeleteAppResult](t, s.do(t, "DELETE", "/v1/apps/web", nil), http.StatusOK); again.Status != events.OutcomeNoOp {
		t.Fatalf("delete twice = %+v, want noop", again)
	}
}

func TestRollout(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	problem(t, s.do(t, "POST", "/v1/apps/web/rollout", nil), http.StatusConflict, "no_current_revision")
	id := s.deployed(t, "web", nil)

	started := ok[control.RolloutResult](t, s.do(t, "POST", "/v1/apps/web/rollout", map[string]any{"wait": false}), http.StatusAccepted)
	if started.RolloutID == "" || started.Status != "requested" || started.Force {
		t.Fatalf("rollout = %+v", started)
	}
	view := ok[projections.RolloutView](t, s.do(t, "GET", fmt.Sprintf("/v1/apps/web/rollouts/%s?min_sequence=%d", started.RolloutID, started.Sequence), nil), http.StatusOK)
	if view.Status != projections.RolloutActive || view.RevisionID != id || view.RequestedBy != "token:test" {
		t.Fatalf("rollout view = %+v", view)
	}
	problem(t, s.do(t, "POST", "/v1/apps/web/rollout", nil), http.StatusConflict, "rollout_in_progress")

	// A force rollout supersedes the active one; wait is the default.
	done := s.completeNextRollout(t, "web", 2)
	forced := ok[control.RolloutResult](t, s.do(t, "POST", "/v1/apps/web/rollout", map[string]any{"force": true}), http.StatusOK)
	await(t, done)
	if forced.Status != "completed" || forced.Replaced != 2 || !forced.Force || forced.RolloutID == started.RolloutID {
		t.Fatalf("forced rollout = %+v", forced)
	}
	view = ok[projections.RolloutView](t, s.do(t, "GET", fmt.Sprintf("/v1/apps/web/rollouts/%s?min_sequence=%d", started.RolloutID, forced.Sequence), nil), http.StatusOK)
	if view.Status != projections.RolloutSuperseded || view.SupersededBy != forced.RolloutID {
		t.Fatalf("superseded rollout = %+v", view)
	}
	problem(t, s.do(t, "GET", "/v1/apps/web/rollouts/"+uuid.NewString(), nil), http.StatusNotFound, "rollout_not_found")
}

func TestRunnersFilterByState(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	id := s.deployStarted(t, "web", nil).RevisionID
	// Runner ids are UUIDs, in the order of their names.
	const (
		gone    = "0193f1c2-cccc-7000-8000-000000000001"
		idle    = "0193f1c2-cccc-7000-8000-000000000002"
		running = "0193f1c2-cccc-7000-8000-000000000003"
	)
	for _, r := range []struct {
		id    string
		state events.RunnerState
	}{{idle, events.RunnerIdle}, {running, events.RunnerRunning}, {gone, events.RunnerTerminated}} {
		s.execute(t, "web", events.ReportRunner{RunnerID: r.id, RevisionID: id, State: r.state, PID: 100, Port: 8000})
	}
	ids := func(query string) []string {
		t.Helper()
		runners := ok[[]projections.RunnerView](t, s.do(t, "GET", "/v1/apps/web/runners"+query, nil), http.StatusOK)
		out := []string{}
		for _, r := range runners {
			out = append(out, r.RunnerID)
		}
		slices.Sort(out)
		return out
	}
	for query, want := range map[string][]string{
		"":                  {idle, running},
		"?state=all":        {gone, idle, running},
		"?state=idle":       {idle},
		"?state=running":    {running},
		"?state=terminated": {gone},
		"?state=setup":      {},
	} {
		if got := ids(query); !slices.Equal(got, want) {
			t.Errorf("runners%s = %v, want %v", query, got, want)
		}
	}
	p := problem(t, s.do(t, "GET", "/v1/apps/web/runners?state=sleeping", nil), http.StatusBadRequest, "bad_request")
	if !strings.Contains(p.Detail, "sleeping") {
		t.Fatalf("problem = %+v", p)
	}
	problem(t, s.do(t, "GET", "/v1/apps/nope/runners", nil), http.StatusNotFound, "app_not_found")
}

func TestStopAndKillRunner(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	id := s.deployStarted(t, "web", nil).RevisionID
	const runner = "0193f1c2-cccc-7000-8000-000000000002"
	s.execute(t, "web", events.ReportRunner{RunnerID: runner, RevisionID: id, State: events.RunnerIdle, PID: 100, Port: 8000})
	path := "/v1/apps/web/runners/" + runner

	problem(t, s.do(t, "POST", path+"/kill", map[string]any{"replace": true}), http.StatusBadRequest, "invalid_argument")
	problem(t, s.do(t, "POST", "/v1/apps/web/runners/0193f1c2-cccc-7000-8000-000000000009/stop", nil), http.StatusNotFound, "runner_not_found")
	requested := ok[control.StopResult](t, s.do(t, "POST", path+"/stop", map[string]any{"replace": true, "wait": false}), http.StatusAccepted)
	if requested.Status != events.OutcomeAccepted || requested.Stopped || requested.RunnerID != runner {
		t.Fatalf("stop = %+v", requested)
	}
	again := ok[control.StopResult](t, s.do(t, "POST", path+"/stop", map[string]any{"wait": false}), http.StatusAccepted)
	if again.Status != events.OutcomeNoOp {
		t.Fatalf("second stop = %+v", again)
	}
	// A kill supersedes the graceful stop; with wait, the answer comes
	// once the runner's end is in the log (here reported by the test, as
	// the runner worker would).
	done := s.onEvent(t, "web", func(ev events.Event) (events.Command, bool) {
		if stop, ok := ev.(events.RunnerStopRequested); !ok || !stop.Force {
			return nil, false
		}
		return events.ReportRunner{RunnerID: runner, RevisionID: id, State: events.RunnerTerminated, Reason: "kill requested by test; 3 in-flight request(s) dropped"}, true
	})
	killed := ok[control.StopResult](t, s.do(t, "POST", path+"/kill", nil), http.StatusOK)
	await(t, done)
	if !killed.Stopped || !strings.Contains(killed.Reason, "3 in-flight request(s) dropped") {
		t.Fatalf("kill = %+v", killed)
	}
	problem(t, s.do(t, "POST", path+"/kill", nil), http.StatusNotFound, "runner_not_found")
}

func TestActorIsTheTokensName(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	// A header claiming another actor changes nothing.
	deployer := []string{"Authorization", "Bearer " + s.token(t, "alice", auth.RoleDeployer, ""), "X-Revline-Actor", "mallory"}
	alice := ok[control.DeployResult](t, s.do(t, "POST", "/v1/apps/web/deploy", map[string]any{"command": "serve"}, deployer...), http.StatusAccepted)
	dflt := s.deployStarted(t, "web", nil)
	s.caughtUp(t, dflt.Sequence)
	for id, want := range map[string]string{alice.RevisionID: "token:alice", dflt.RevisionID: "token:test"} {
		if rev := ok[projections.RevisionView](t, s.do(t, "GET", "/v1/apps/web/revisions/"+id, nil), http.StatusOK); rev.CreatedBy != want {
			t.Errorf("revision %s created_by = %q, want %q", id, rev.CreatedBy, want)
		}
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	healthy := newStack(t)
	if got := ok[map[string]string](t, healthy.do(t, "GET", "/healthz", nil), http.StatusOK); got["status"] != "ok" {
		t.Fatalf("healthz = %v", got)
	}
	sick := newStack(t, func(c *httpapi.Config) {
		c.Ready = func() error { return fmt.Errorf("event stream unavailable") }
	})
	p := problem(t, sick.do(t, "GET", "/healthz", nil), http.StatusServiceUnavailable, "not_ready")
	if !strings.Contains(p.Detail, "event stream unavailable") {
		t.Fatalf("problem = %+v", p)
	}
}

func TestMetricsCountCommands(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.deployStarted(t, "web", nil)
	select {
	case <-s.observed:
	case <-testContext(t).Done():
		t.Fatal("the metrics never saw the deploy's outcome")
	}
	r := s.do(t, "GET", "/metrics", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `revline_commands_total{status="accepted",type="deploy"} 1`) {
		t.Fatalf("metrics: status %d, body:\n%s", r.status, r.body)
	}

	without := newStack(t, func(c *httpapi.Config) { c.Metrics = nil })
	problem(t, without.do(t, "GET", "/metrics", nil), http.StatusNotFound, "not_found")
}

// routes are every path of the API, as the OpenAPI document names them.
var routes = []string{
	"/healthz", "/metrics", "/v1/openapi.yaml", "/v1/apps",
	"/v1/apps/{app}/revisions", "/v1/apps/{app}/revisions/{ref}",
	"/v1/apps/{app}/deploy", "/v1/apps/{app}/set-rev", "/v1/apps/{app}/rollout",
	"/v1/apps/{app}/scale", "/v1/apps/{app}/suspend", "/v1/apps/{app}/resume",
	"/v1/apps/{app}/runners", "/v1/apps/{app}/rollouts/{id}",
	"/v1/apps/{app}/runners/{runner}/logs",
	"/v1/apps/{app}/runners/{runner}/stop", "/v1/apps/{app}/runners/{runner}/kill",
	"/v1/audit", "/v1/audit/stream", "/v1/apps/{app}/config", "/v1/apps/{app}/config/{param}/history", "/v1/apps/{app}/diff",
	"/v1/webhooks", "/v1/webhooks/{id}", "/v1/webhooks/{id}/disable", "/v1/webhooks/{id}/enable",
	"/v1/webhooks/{id}/deliveries", "/v1/webhooks/{id}/redeliver",
	"/v1/replay",
}

func TestOpenAPIDocumentIsServed(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.do(t, "GET", "/v1/openapi.yaml", nil)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/yaml" {
		t.Fatalf("status %d, Content-Type %q", r.status, r.header.Get("Content-Type"))
	}
	doc := string(r.body)
	if !strings.HasPrefix(doc, "openapi: 3.1") || doc != string(httpapi.OpenAPI()) {
		t.Fatalf("document starts %q", doc[:min(len(doc), 40)])
	}
	for _, path := range routes {
		if !strings.Contains(doc, "\n  "+path+":\n") {
			t.Errorf("the document does not describe %s", path)
		}
	}
	for _, name := range []string{"application/problem+json", "DeployRequest", "SetRevisionRequest", "RolloutRequest", "ScaleRequest",
		"DeployResult", "SwitchResult", "RolloutResult", "DeleteResult", "ChangeResult", "AppView", "RevisionView", "RunnerView", "RolloutView", "Problem", "LogPage", "LogLine",
		"AuditPage", "AuditEntry", "AuditRecord", "Config", "Setting", "RevisionDiff", "securitySchemes", "bearerAuth", "Unauthenticated", "Forbidden",
		"ReplayRequest", "ReplayReport"} {
		if !strings.Contains(doc, name) {
			t.Errorf("the document does not mention %s", name)
		}
	}
}

// TestOpenAPIProblemCodesAreTheCatalogue checks that the Problem schema's
// code enum is exactly the catalogue's codes that can be errors of the
// API (not the gateway's own).
func TestOpenAPIProblemCodesAreTheCatalogue(t *testing.T) {
	t.Parallel()
	_, after, ok := strings.Cut(string(httpapi.OpenAPI()), "\n          enum: [missing_command_id")
	if !ok {
		t.Fatal("the Problem schema has no code enum starting with missing_command_id")
	}
	line, _, _ := strings.Cut("missing_command_id"+after, "]")
	documented := map[string]bool{}
	for code := range strings.SplitSeq(line, ", ") {
		documented[code] = true
	}
	for _, spec := range events.Catalogue() {
		if spec.Kind == events.KindNoOp || spec.Kind == events.KindGateway {
			if documented[spec.Code] {
				t.Errorf("%s %q is not an error of the API, but the Problem enum lists it", spec.Kind, spec.Code)
			}
			continue
		}
		if !documented[spec.Code] {
			t.Errorf("the Problem enum lacks %q", spec.Code)
		}
		delete(documented, spec.Code)
	}
	for code := range documented {
		t.Errorf("the Problem enum lists %q, which the catalogue does not", code)
	}
}

func TestUnknownRoutesAndMethodsAreProblems(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	problem(t, s.do(t, "GET", "/v1/nothing", nil), http.StatusNotFound, "not_found")
	r := s.do(t, "PUT", "/v1/apps/web/deploy", "{}")
	problem(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "POST") {
		t.Fatalf("Allow = %q", allow)
	}
}

func TestNewHandlerNamesMissingSettings(t *testing.T) {
	t.Parallel()
	_, err := httpapi.NewHandler(httpapi.Config{})
	if err == nil || !strings.Contains(err.Error(), "Control is required") || !strings.Contains(err.Error(), "Reader is required") {
		t.Fatalf("NewHandler(Config{}) error = %v", err)
	}
	_, err = httpapi.NewHandler(httpapi.Config{Control: &control.Control{}})
	if err == nil || !strings.Contains(err.Error(), "Control.Commands is required") {
		t.Fatalf("NewHandler without Control.Commands: error = %v", err)
	}
}

// A deploy waited for that a rollback overtook (a set-rev while it
// deployed) answers 409 deploy_not_current with its revision: it is
// deployed, and the rollback stands.
func TestDeployWaitOvertakenByARollbackIsAConflict(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	done := s.settleNextDeploy(t, "web", "")
	first := ok[control.DeployResult](t, s.do(t, "POST", "/v1/apps/web/deploy", map[string]any{"command": "serve", "wait": true}), http.StatusCreated)
	await(t, done)
	done = s.settleNextDeploy(t, "web", "")
	second := ok[control.DeployResult](t, s.do(t, "POST", "/v1/apps/web/deploy", map[string]any{"command": "serve v2", "wait": true}), http.StatusCreated)
	await(t, done)
	// The stand-ins below follow from the model's checkpoint: past v2.
	ok[[]projections.AppView](t, s.do(t, "GET", fmt.Sprintf("/v1/apps?min_sequence=%d", second.Sequence), nil), http.StatusOK)
	rolledBack := s.onEvent(t, "web", func(ev events.Event) (events.Command, bool) {
		if _, ok := ev.(events.RevisionCreated); ok {
			return events.SetRevision{RevisionID: first.RevisionID}, true
		}
		return nil, false
	})
	var deploying string
	completed := s.onEvent(t, "web", func(ev events.Event) (events.Command, bool) {
		switch ev := ev.(type) {
		case events.RevisionCreated:
			deploying = ev.RevisionID
		case events.CurrentRevisionSet:
			return events.CompleteDeploy{RevisionID: deploying}, ev.Reason == events.ReasonRollback
		}
		return nil, false
	})
	p := problem(t, s.do(t, "POST", "/v1/apps/web/deploy", map[string]any{"command": "serve v3", "wait": true}), http.StatusConflict, "deploy_not_current")
	await(t, rolledBack)
	await(t, completed)
	if p.RevisionID == "" || p.Sequence == 0 || !strings.Contains(p.Detail, "deployed, not current: the app was rolled back to v1 while it deployed") {
		t.Fatalf("problem = %+v", p)
	}
	rev := ok[projections.RevisionView](t, s.do(t, "GET", fmt.Sprintf("/v1/apps/web/revisions/%s?min_sequence=%d", p.RevisionID, p.Sequence), nil), http.StatusOK)
	if rev.Status != events.StatusDeployed || rev.Current {
		t.Fatalf("overtaken revision = %+v, want deployed, not current", rev)
	}
}
