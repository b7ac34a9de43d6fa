package audit

import (
	"fmt"
	"slices"
	"strings"

	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/events"
)

// Summary says in one line what env did to its app, whose state just
// before it was before (folded with aggregates.Evolve): "deployed v4",
// "rolled back to v3 (runtime params kept from v5)", "scaled
// min_concurrency 0→2". Revisions are named by number when before knows
// them, else by the first 8 characters of their id. Free text from the
// event (messages, reasons) is quoted, so that it cannot pass for
// Revline's own words.
func Summary(before aggregates.App, env events.Envelope) string {
	name := func(id string) string { return revisionName(before, id) }
	switch ev := env.Event.(type) {
	case events.RevisionCreated:
		n := aggregates.RevisionNumber(ev, before.LastNumber)
		return fmt.Sprintf("deploy of v%d requested (%s)%s", n, ev.Code.MachineType, message(ev.Message))
	case events.RevisionDeployed:
		if ev.RolledBackTo == "" {
			return fmt.Sprintf("%s is up", name(ev.RevisionID))
		}
		moved := "rolled back to "
		if isForward(before, ev.RevisionID, ev.RolledBackTo) {
			moved = "rolled forward to "
		}
		return fmt.Sprintf("%s is up; not made current: %s%s while it deployed", name(ev.RevisionID), moved, name(ev.RolledBackTo))
	case events.RevisionFailed:
		return fmt.Sprintf("deploy of %s failed: %q", name(ev.RevisionID), ev.Reason)
	case events.RevisionDeleted:
		return fmt.Sprintf("deleted %s", name(ev.RevisionID))
	case events.CurrentRevisionSet:
		return switchSummary(before, ev)
	case events.AppScaled:
		return "scaled " + changes(ev)
	case events.AppSuspended:
		return fmt.Sprintf("suspended (current revision %s)", name(ev.RevisionID))
	case events.AppResumed:
		return fmt.Sprintf("resumed (current revision %s)", name(ev.RevisionID))
	case events.AppDeleted:
		return deletedSummary(ev, name)
	case events.RolloutRequested:
		return fmt.Sprintf("%s rollout of %s requested", rolloutKind(ev.Force), name(ev.RevisionID))
	case events.RolloutCompleted:
		s := fmt.Sprintf("%s rollout of %s completed: %d runner(s) replaced", rolloutKind(ev.Force), name(ev.RevisionID), ev.Replaced)
		if ev.Force {
			s += fmt.Sprintf(", %d in-flight request(s) dropped", ev.DroppedRequests)
		}
		return s
	case events.RolloutFailed:
		s := fmt.Sprintf("%s rollout of %s failed: %s; %d runner(s) replaced", rolloutKind(ev.Force), name(ev.RevisionID), ev.Reason, ev.Replaced)
		if ev.Force {
			s += fmt.Sprintf(", %d in-flight request(s) dropped", ev.DroppedRequests)
		}
		return s
	case events.RunnerStateChanged:
		s := fmt.Sprintf("runner %s of %s %s", ev.RunnerID, name(ev.RevisionID), ev.State)
		if ev.Reason != "" {
			s += fmt.Sprintf(": %q", ev.Reason)
		}
		return s
	case events.RunnerStopRequested:
		switch {
		case ev.Force:
			return fmt.Sprintf("kill of runner %s of %s requested", ev.RunnerID, name(ev.RevisionID))
		case ev.Replace:
			return fmt.Sprintf("stop of runner %s of %s requested, replacement first", ev.RunnerID, name(ev.RevisionID))
		}
		return fmt.Sprintf("stop of runner %s of %s requested", ev.RunnerID, name(ev.RevisionID))
	case events.SecretSet:
		if prior, ok := before.Secrets[ev.Name]; ok {
			return fmt.Sprintf("secret %s changed (version %d → %d); running runners keep the old value until a rollout", ev.Name, prior.Version, ev.Version)
		}
		return fmt.Sprintf("secret %s set (version %d)", ev.Name, ev.Version)
	case events.SecretUnset:
		return fmt.Sprintf("secret %s unset", ev.Name)
	case events.WebhookAdded:
		return webhookAddedSummary(ev)
	case events.WebhookDisabled:
		return webhookSummary("disabled", events.WebhookChanged(ev))
	case events.WebhookEnabled:
		return webhookSummary("enabled", events.WebhookChanged(ev))
	case events.WebhookRemoved:
		return webhookSummary("removed", events.WebhookChanged(ev))
	case nil:
		return "not a Revline event (no event type): skipped by every reader"
	}
	return env.Type
}

// switchSummary describes a move of the alias and where its parameters
// came from.
func switchSummary(before aggregates.App, ev events.CurrentRevisionSet) string {
	to := revisionName(before, ev.To)
	var s string
	switch {
	case ev.Reason != events.ReasonRollback:
		s = "deployed " + to
	case isForward(before, ev.From, ev.To):
		s = "rolled forward to " + to
	default:
		s = "rolled back to " + to
	}
	switch {
	case len(ev.Inherited) == len(events.RuntimeParamNames) && ev.InheritedFrom != "":
		s += fmt.Sprintf(" (runtime params kept from %s)", revisionName(before, ev.InheritedFrom))
	case len(ev.Inherited) > 0 && ev.InheritedFrom != "":
		s += fmt.Sprintf(" (%s kept from %s)", strings.Join(ev.Inherited, ", "), revisionName(before, ev.InheritedFrom))
	case ev.From == "":
		s += " (first deploy: runtime params from the deploy)"
	default:
		s += " (runtime params reset from the deploy)"
	}
	return s + message(ev.Message)
}

// isForward reports whether to is newer than from (a roll-forward).
func isForward(state aggregates.App, from, to string) bool {
	f, okFrom := state.Revisions[from]
	t, okTo := state.Revisions[to]
	return okFrom && okTo && t.Number > f.Number
}

// changes lists a scale's changes: "min_concurrency 0→2, keep_alive 60s→300s".
func changes(ev events.AppScaled) string {
	before, after := paramValues(ev.Before, ev.CodeBefore), paramValues(ev.After, ev.CodeAfterFrom(ev.CodeBefore))
	parts := make([]string, 0, len(ev.Changed))
	for _, name := range ev.Changed {
		parts = append(parts, fmt.Sprintf("%s %s→%s", name, before[name], after[name]))
	}
	if len(parts) == 0 {
		return "(nothing changed)"
	}
	return strings.Join(parts, ", ")
}

// paramValues shows every parameter's value by wire name, durations with
// their unit ("300s").
func paramValues(rt events.RuntimeParams, code events.CodeParams) map[string]string {
	values := map[string]string{}
	for _, v := range slices.Concat(rt.Values(), code.Values()) {
		values[v.Name] = v.Value
	}
	return values
}

// revisionName names revision id as state knows it: "v3", or the first 8
// characters of an id it does not know.
func revisionName(state aggregates.App, id string) string {
	if r, ok := state.Revisions[id]; ok && r.Number != 0 {
		return fmt.Sprintf("v%d", r.Number)
	}
	if id == "" {
		return "none"
	}
	return short(id)
}

// short is the first 8 characters of an id.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func rolloutKind(force bool) string {
	if force {
		return "force"
	}
	return "graceful"
}

// message quotes a deploy's or set-rev's message, if any.
func message(m string) string {
	if m == "" {
		return ""
	}
	return fmt.Sprintf(": %q", m)
}

// deletedSummary is the summary of app.deleted: `deleted the app:
// "reason"`,
// with the revision that was current and the secrets forgotten.
func deletedSummary(ev events.AppDeleted, name func(string) string) string {
	s := "deleted the app" + message(ev.Reason)
	var details []string
	if ev.RevisionID != "" {
		details = append(details, "current revision was "+name(ev.RevisionID))
	}
	if len(ev.Secrets) > 0 {
		details = append(details, "secrets forgotten: "+strings.Join(ev.Secrets, ", "))
	}
	if len(details) > 0 {
		s += " (" + strings.Join(details, "; ") + ")"
	}
	return s
}

func webhookAddedSummary(ev events.WebhookAdded) string {
	which := "every app's events"
	if ev.App != "" {
		which = "app " + ev.App + "'s events"
	}
	if len(ev.Events) > 0 {
		which += " of type " + strings.Join(ev.Events, ", ")
	}
	return fmt.Sprintf("webhook %s added by %s: %s to %s, from event %d", ev.WebhookID, ev.By, which, ev.Target, ev.StartSequence)
}

func webhookSummary(what string, ev events.WebhookChanged) string {
	s := fmt.Sprintf("webhook %s %s by %s", ev.WebhookID, what, ev.By)
	if ev.Reason != "" {
		s += fmt.Sprintf(": %q", ev.Reason)
	}
	return s
}
