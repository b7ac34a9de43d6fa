package dashboard

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/cmd/revline/internal/httpapi"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/audit"
	"github.com/revline/revline/projections/queryapi"
)

// readTimeout bounds the reads of one page.
const readTimeout = 15 * time.Second

// maxHistory is how many events the history page shows, newest first.
const maxHistory = 500

// page is what every page template gets.
type page struct {
	Title string
	// App is the app the page is about ("" on the apps page); Tab names
	// its tab (versions, runners, history).
	App string
	Tab string
	// After is the stream sequence the page shows at least: live updates
	// start after it.
	After uint64
	Now   time.Time
	// Error, on an error page, says what went wrong.
	Error string
	Data  any
}

// render writes the page template name with p.
func (d *Dashboard) render(w http.ResponseWriter, status int, name string, p page) {
	var buf bytes.Buffer
	if err := d.pages[name].ExecuteTemplate(&buf, "layout.html", p); err != nil {
		d.cfg.Logger.Error("dashboard: render page", "page", name, "error", err)
		http.Error(w, "the dashboard could not render this page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// readAt returns the stream sequence a page's reads must reflect: the
// min_sequence the page's script asks for (the live event that made it
// refresh), else the log's end now.
func (d *Dashboard) readAt(ctx context.Context, r *http.Request) (uint64, error) {
	if text := r.URL.Query().Get("min_sequence"); text != "" {
		seq, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			return 0, &queryapi.Error{Code: queryapi.CodeBadRequest, Message: fmt.Sprintf("min_sequence %q: want a stream sequence", text)}
		}
		return seq, nil
	}
	end, err := d.cfg.Events.LastSequence(ctx)
	if err != nil {
		return 0, fmt.Errorf("the event log's end: %w", err)
	}
	return end, nil
}

// history returns the app's event log.
func (d *Dashboard) history(ctx context.Context, app string) ([]events.Envelope, error) {
	envs, err := d.cfg.Events.Load(ctx, app, 0)
	if err != nil {
		return nil, fmt.Errorf("reading the history of %q: %w", app, err)
	}
	return envs, nil
}

// appRow is one app on the apps page.
type appRow struct {
	projections.AppView
	CurrentNumber uint64
	Status        string
	Runners       []stateCount
}

// stateCount is how many runners are in one state.
type stateCount struct {
	State events.RunnerState
	Count int
}

func (d *Dashboard) appsPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	rows, at, err := d.apps(ctx, r)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, http.StatusOK, "apps", page{Title: "Apps", After: at, Now: time.Now(), Data: rows})
}

func (d *Dashboard) apps(ctx context.Context, r *http.Request) ([]appRow, uint64, error) {
	at, err := d.readAt(ctx, r)
	if err != nil {
		return nil, 0, err
	}
	apps, err := queryapi.All(ctx, 0, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.AppView], error) {
		return d.cfg.Reader.Apps(ctx, p, at)
	})
	if err != nil {
		return nil, 0, err
	}
	// A token for some apps sees those only.
	t, _ := httpapi.TokenFrom(ctx)
	rows := make([]appRow, 0, len(apps))
	for _, app := range apps {
		if t.Authorize(auth.Read, app.Name) != nil {
			continue
		}
		revs, err := d.revisions(ctx, app.Name, at)
		if err != nil {
			return nil, 0, err
		}
		runners, err := d.runners(ctx, app.Name, at)
		if err != nil {
			return nil, 0, err
		}
		rows = append(rows, appRow{
			AppView: app, CurrentNumber: currentNumber(revs), Status: appStatus(app, revs),
			Runners: countByState(runners),
		})
	}
	return rows, at, nil
}

// appStatus sums an app up in one status: suspended, deploying while a
// revision is, deployed once one is current, failed when every deploy
// failed.
func appStatus(app projections.AppView, revs []projections.RevisionView) string {
	switch {
	case app.Suspended:
		return string(events.StatusSuspended)
	case slices.ContainsFunc(revs, func(r projections.RevisionView) bool { return r.Status == events.StatusDeploying }):
		return string(events.StatusDeploying)
	case app.CurrentRevision != "":
		return string(events.StatusDeployed)
	case len(revs) > 0:
		return string(events.StatusFailed)
	}
	return ""
}

// currentNumber is the number of the current revision among revs, 0 if
// none is current.
func currentNumber(revs []projections.RevisionView) uint64 {
	for _, rev := range revs {
		if rev.Current {
			return rev.Number
		}
	}
	return 0
}

func countByState(runners []projections.RunnerView) []stateCount {
	var counts []stateCount
	for _, r := range runners {
		i := slices.IndexFunc(counts, func(c stateCount) bool { return c.State == r.State })
		if i < 0 {
			counts = append(counts, stateCount{State: r.State})
			i = len(counts) - 1
		}
		counts[i].Count++
	}
	slices.SortFunc(counts, func(a, b stateCount) int { return cmp.Compare(a.State, b.State) })
	return counts
}

func (d *Dashboard) revisions(ctx context.Context, app string, at uint64) ([]projections.RevisionView, error) {
	return queryapi.All(ctx, 0, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.RevisionView], error) {
		return d.cfg.Reader.Revisions(ctx, app, p, at)
	})
}

// runners returns the app's live runners (not terminated).
func (d *Dashboard) runners(ctx context.Context, app string, at uint64) ([]projections.RunnerView, error) {
	return queryapi.All(ctx, 0, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.RunnerView], error) {
		return d.cfg.Reader.Runners(ctx, app, queryapi.RunnerFilter{}, p, at)
	})
}

// appPage is what the three pages of one app share.
type appPage struct {
	App projections.AppView
}

// appPage reads the app for a page of it, and the stream sequence the
// page's reads reflect.
func (d *Dashboard) appPage(ctx context.Context, r *http.Request, app string) (appPage, uint64, error) {
	at, err := d.readAt(ctx, r)
	if err != nil {
		return appPage{}, 0, err
	}
	apps, err := queryapi.All(ctx, 0, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.AppView], error) {
		return d.cfg.Reader.Apps(ctx, p, at)
	})
	if err != nil {
		return appPage{}, 0, err
	}
	i := slices.IndexFunc(apps, func(a projections.AppView) bool { return a.Name == app })
	if i < 0 {
		return appPage{}, 0, &queryapi.Error{Code: queryapi.CodeAppNotFound, Message: fmt.Sprintf("app %q not found", app)}
	}
	return appPage{App: apps[i]}, at, nil
}

// revisionRow is one revision on the versions page.
type revisionRow struct {
	projections.RevisionView
	CanRollback bool
	CanDelete   bool
}

// versions is the data of the versions page.
type versions struct {
	appPage
	CurrentNumber uint64
	Revisions     []revisionRow
}

func (d *Dashboard) versionsPage(w http.ResponseWriter, r *http.Request, app string) error {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	ap, at, err := d.appPage(ctx, r, app)
	if err != nil {
		return err
	}
	revs, err := d.revisions(ctx, app, at)
	if err != nil {
		return err
	}
	v := versions{appPage: ap, CurrentNumber: currentNumber(revs)}
	for _, rev := range revs {
		v.Revisions = append(v.Revisions, revisionRow{
			RevisionView: rev,
			// The decider has the last word; these only spare users a
			// button that can only be refused.
			CanRollback: !rev.Current && rev.Status == events.StatusDeployed && !ap.App.Suspended,
			CanDelete:   !rev.Current && rev.Status != events.StatusDeploying,
		})
	}
	d.render(w, http.StatusOK, "versions", page{Title: app + " · Versions", App: app, Tab: "versions", After: at, Now: time.Now(), Data: v})
	return nil
}

// runnersData is the data of the runners page.
type runnersData struct {
	appPage
	Runners []projections.RunnerView
	// Numbers are the numbers of the runners' revisions, by id.
	Numbers map[string]uint64
	// Rollout is the app's last rollout, if any.
	Rollout *projections.RolloutView
}

func (d *Dashboard) runnersPage(w http.ResponseWriter, r *http.Request, app string) error {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	ap, at, err := d.appPage(ctx, r, app)
	if err != nil {
		return err
	}
	runners, err := d.runners(ctx, app, at)
	if err != nil {
		return err
	}
	numbers, err := d.revisionNumbers(ctx, app, runners, at)
	if err != nil {
		return err
	}
	h, err := d.history(ctx, app)
	if err != nil {
		return err
	}
	data := runnersData{appPage: ap, Runners: runners, Numbers: numbers}
	for _, env := range slices.Backward(h) {
		if ev, ok := env.Event.(events.RolloutRequested); ok {
			ro, err := d.cfg.Reader.Rollout(ctx, app, ev.RolloutID, at)
			if err != nil {
				return err
			}
			data.Rollout = &ro
			break
		}
	}
	d.render(w, http.StatusOK, "runners", page{Title: app + " · Runners", App: app, Tab: "runners", After: at, Now: time.Now(), Data: data})
	return nil
}

// revisionNumbers returns the numbers of the runners' revisions, by id:
// from the list of revisions, or, for a deleted one (which leaves the
// list while its runners drain), from the revision itself.
func (d *Dashboard) revisionNumbers(ctx context.Context, app string, runners []projections.RunnerView, at uint64) (map[string]uint64, error) {
	numbers := map[string]uint64{}
	if len(runners) == 0 {
		return numbers, nil
	}
	revs, err := d.revisions(ctx, app, at)
	if err != nil {
		return nil, err
	}
	for _, rev := range revs {
		numbers[rev.RevisionID] = rev.Number
	}
	for _, runner := range runners {
		if _, ok := numbers[runner.RevisionID]; ok || runner.RevisionID == "" {
			continue
		}
		rev, err := d.cfg.Reader.Revision(ctx, app, runner.RevisionID, at)
		var unknown *queryapi.Error
		switch {
		case errors.As(err, &unknown) && unknown.Code == queryapi.CodeRevisionNotFound:
			continue // the page names it by its id alone
		case err != nil:
			return nil, err
		}
		numbers[rev.RevisionID] = rev.Number
	}
	return numbers, nil
}

// historyEntry is one event on the history page.
type historyEntry struct {
	Sequence uint64
	At       time.Time
	Actor    string
	Type     string
	Summary  string
}

// historyData is the data of the history page.
type historyData struct {
	appPage
	Entries []historyEntry
	// RunnerReports is set when runner reports are shown; Hidden counts
	// those left out otherwise, Older the events beyond maxHistory.
	RunnerReports bool
	Hidden        int
	Older         int
}

func (d *Dashboard) historyPage(w http.ResponseWriter, r *http.Request, app string) error {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	ap, at, err := d.appPage(ctx, r, app)
	if err != nil {
		return err
	}
	h, err := d.history(ctx, app)
	if err != nil {
		return err
	}
	data := historyData{appPage: ap, RunnerReports: r.URL.Query().Get("runners") == "1"}
	// Each event is summarised against its app as it was just before it,
	// as `revline audit` does.
	state := aggregates.App{Name: app}
	for _, env := range h {
		if env.Event == nil {
			continue
		}
		summary := audit.Summary(state, env)
		state = aggregates.Evolve(state, env)
		if env.Type == events.TypeRunnerStateChanged && !data.RunnerReports {
			data.Hidden++
			continue
		}
		data.Entries = append(data.Entries, historyEntry{
			Sequence: env.Sequence, At: env.OccurredAt, Actor: env.Actor, Type: env.Type, Summary: summary,
		})
	}
	slices.Reverse(data.Entries)
	if len(data.Entries) > maxHistory {
		data.Older = len(data.Entries) - maxHistory
		data.Entries = data.Entries[:maxHistory]
	}
	d.render(w, http.StatusOK, "history", page{Title: app + " · History", App: app, Tab: "history", After: at, Now: time.Now(), Data: data})
	return nil
}

func (d *Dashboard) notFound(w http.ResponseWriter, r *http.Request) {
	d.render(w, http.StatusNotFound, "error", page{Title: "Not found", Error: fmt.Sprintf("There is no dashboard page at %s.", r.URL.Path)})
}
