package dashboard

import (
	"fmt"
	"strings"

	"github.com/revline/revline/events"
)

// Summary says in one line what env records, for the history page.
// numbers, optional, gives revisions their number (#3) besides their
// short id.
func Summary(env events.Envelope, numbers map[string]int) string {
	rev := func(id string) string {
		if id == "" {
			return "none"
		}
		if n, ok := numbers[id]; ok {
			return fmt.Sprintf("#%d (%s)", n, shortID(id))
		}
		return shortID(id)
	}
	switch ev := env.Event.(type) {
	case events.RevisionCreated:
		return withMessage(fmt.Sprintf("Deploy of revision %s requested (%s, %s)", rev(ev.RevisionID), ev.Code.MachineType, quote(ev.Command)), ev.Message)
	case events.RevisionDeployed:
		return fmt.Sprintf("Revision %s deployed", rev(ev.RevisionID))
	case events.RevisionFailed:
		return fmt.Sprintf("Revision %s failed: %s", rev(ev.RevisionID), ev.Reason)
	case events.RevisionDeleted:
		return fmt.Sprintf("Revision %s deleted", rev(ev.RevisionID))
	case events.CurrentRevisionSet:
		verb := "Switched"
		switch ev.Reason {
		case "deploy":
			verb = "Deployed: switched"
		case "rollback":
			verb = "Rolled back: switched"
		}
		s := fmt.Sprintf("%s from %s to %s", verb, rev(ev.From), rev(ev.To))
		if ev.From == "" {
			s = fmt.Sprintf("%s to %s (first current revision)", verb, rev(ev.To))
		}
		if len(ev.Inherited) > 0 && ev.From != "" {
			s += "; runtime parameters kept"
		}
		return withMessage(s, ev.Message)
	case events.AppScaled:
		return fmt.Sprintf("Scaled: %s", scaleChanges(ev))
	case events.AppSuspended:
		return "App suspended"
	case events.AppResumed:
		return "App resumed"
	case events.RolloutRequested:
		kind := "Graceful"
		if ev.Force {
			kind = "Force"
		}
		return fmt.Sprintf("%s rollout %s of revision %s requested", kind, shortID(ev.RolloutID), rev(ev.RevisionID))
	case events.RolloutCompleted:
		s := fmt.Sprintf("Rollout %s completed: %d runner(s) replaced", shortID(ev.RolloutID), ev.Replaced)
		if ev.DroppedRequests > 0 {
			s += fmt.Sprintf(", %d request(s) dropped", ev.DroppedRequests)
		}
		return s
	case events.RunnerStateChanged:
		s := fmt.Sprintf("Runner %s of revision %s is %s", shortID(ev.RunnerID), rev(ev.RevisionID), ev.State)
		if ev.Reason != "" {
			s += ": " + ev.Reason
		}
		return s
	}
	return env.Type
}

func withMessage(s, message string) string {
	if message == "" {
		return s
	}
	return s + ": " + quote(message)
}

// quote shows a user's text in quotes, on one line and not too long.
func quote(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 80 {
		s = string(r[:79]) + "…"
	}
	return "“" + s + "”"
}

// scaleChanges lists a scale's changed parameters as name old→new.
func scaleChanges(ev events.AppScaled) string {
	before := params(ev.CodeBefore, ev.Before)
	after := params(ev.CodeAfterFrom(ev.CodeBefore), ev.After)
	var parts []string
	for i := range before {
		if before[i].value != after[i].value {
			parts = append(parts, fmt.Sprintf("%s %s → %s", before[i].name, before[i].value, after[i].value))
		}
	}
	if len(parts) == 0 {
		return strings.Join(ev.Changed, ", ")
	}
	return strings.Join(parts, ", ")
}
