package audit

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseTime reads a point in time as the audit's --since and --until (and
// the HTTP API's since and until) take it: RFC 3339 ("2025-06-01T12:00:00Z"),
// a duration before now, with or without " ago": "2h ago", "30m",
// "1h30m", "3d" (days of 24 hours), or "now".
func ParseTime(text string, now time.Time) (time.Time, error) {
	text = strings.TrimSpace(text)
	if text == "now" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, text); err == nil {
		return t, nil
	}
	d, err := parseAgo(strings.TrimSpace(strings.TrimSuffix(text, "ago")))
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2025-06-01T12:00:00Z), a duration before now (2h ago, 30m, 3d) or now", text)
	}
	return now.Add(-d), nil
}

// parseAgo reads a positive Go duration, or a whole number of days ("3d").
func parseAgo(text string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(text, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > 100000 {
			return 0, fmt.Errorf("bad number of days %q", days)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q is not positive", text)
	}
	return d, nil
}
