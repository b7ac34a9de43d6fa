package dashboard

import (
	"fmt"
	"html/template"
	"time"

	"github.com/revline/revline/events"
)

// templateFuncs are the functions the templates use.
var templateFuncs = template.FuncMap{
	"short":    shortID,
	"revision": func(number uint64, id string) revision { return revision{Number: number, ID: id} },
	"ago":      ago,
	"since":    since,
	"exact":    exact,
	"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"seconds":  seconds,
	"isZero":   func(t time.Time) bool { return t.IsZero() },
	"pair":     func(t, now time.Time) moment { return moment{T: t, Now: now} },
}

// moment is a time shown relative to the page's now (the "when" template).
type moment struct{ T, Now time.Time }

// shortID is an id's first 13 characters: older ids are UUID v7, whose
// first characters are their creation time, so fewer would make ids
// created within a minute look the same. Pages show the whole id on hover.
func shortID(id string) string {
	if len(id) > 13 {
		return id[:13]
	}
	return id
}

// revision names a revision on the pages: by the number recorded when it
// was created (v3) and its short id (the "revision" template).
type revision struct {
	// Number is 0 when the page does not know it.
	Number uint64
	ID     string
}

// String is "v3 (01a2182b-941d)", or the short id alone without a number.
func (r revision) String() string {
	if r.Number == 0 {
		return shortID(r.ID)
	}
	return fmt.Sprintf("v%d (%s)", r.Number, shortID(r.ID))
}

// exact is a time to the second, in UTC, for the hover text.
func exact(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// ago says how long before now t was, roughly: the script keeps it up to
// date in the browser.
func ago(t, now time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	return roughly(d) + " ago"
}

// since says how long t is past, roughly (an uptime).
func since(t, now time.Time) string {
	return roughly(max(now.Sub(t), 0))
}

func roughly(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return "a few seconds"
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
}

// seconds shows a duration parameter as the CLI does.
func seconds(s events.Seconds) string { return fmt.Sprintf("%ds", s) }
