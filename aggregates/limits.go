package aggregates

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/revline/revline/events"
)

// Limits of every command field, enforced by Decide so that the bus, the
// HTTP API and the CLI refuse the same input with the same sentence (an
// invalid_argument rejection naming the field, the limit and what was sent).
// Sizes are in bytes of UTF-8, as stored and sent; docs/bus.md §5 lists them.
//
// They are chosen so that one revision stays small however it is written:
// every revision travels whole in list-rev pages, in the event log and in
// every projection, so the largest one (about 13 KiB of text) still fits
// many times into a NATS message, and the largest valid command encodes,
// even with the worst JSON escaping, within the command stream's message
// limit (commandbus.MaxCommandMsgSize; a test checks).
const (
	// MaxCount bounds counts (max_multiplexing, max_concurrency,
	// concurrency_buffer): generous, but a typo must not ask the worker
	// for a million processes.
	MaxCount = 1000
	// MaxDuration bounds durations (startup_timeout, keep_alive,
	// request_timeout), so that none overflows a time.Duration.
	MaxDuration = events.Seconds(7 * 24 * 3600)

	// MaxCommandLineBytes bounds deploy's command: one shell command line,
	// as in a Procfile. POSIX promises text utilities lines of 2048 bytes
	// (LINE_MAX); twice that is plenty for a command that starts a server,
	// and anything longer belongs in a script shipped with the code.
	MaxCommandLineBytes = 4096

	// MaxMessageBytes bounds the message of deploy and set_revision: a
	// note for people, shown on one line of list-rev and in the audit log,
	// like a commit subject (GitHub caps a deployment description at 140
	// characters). 1 KiB leaves room for scripts that take 3 bytes a
	// character.
	MaxMessageBytes = 1024

	// MaxMachineTypeBytes bounds code.machine_type: names like XS,
	// GPU-H100 or a cloud instance type (p4de.24xlarge,
	// Standard_NC24ads_A100_v4) are well within it.
	MaxMachineTypeBytes = 64

	// MaxAnnotations bounds the number of a deploy's annotations: enough
	// for a CI system's git sha, build URL, author, branch and more.
	MaxAnnotations = 64
	// MaxSecrets bounds an app's secrets.
	MaxSecrets = 100
	// MaxAnnotationKeyBytes bounds an annotation key, as Kubernetes bounds
	// the name of a label key (63 characters).
	MaxAnnotationKeyBytes = 63
	// MaxAnnotationValueBytes bounds one annotation value: a long URL fits.
	MaxAnnotationValueBytes = 1024
	// MaxAnnotationsBytes bounds the keys and values of a deploy's
	// annotations together, as Kubernetes bounds an object's annotations
	// together (256 KiB there; a revision is listed far more often than a
	// Kubernetes object is, so Revline keeps it at 8 KiB).
	MaxAnnotationsBytes = 8 << 10

	// MaxReasonBytes bounds fail_deploy's and report_runner's reason. The
	// runner worker writes them and may quote a runner's output: it must
	// cut the text to this size (and remove control characters) before it
	// sends the command, because the decider refuses longer reasons.
	MaxReasonBytes = 4096

	// MaxRunnerPID bounds report_runner's pid: Linux never hands out a pid
	// above 2^22 (PID_MAX_LIMIT), and other systems stay lower.
	MaxRunnerPID = 1 << 22
	// MaxPort bounds report_runner's port: a TCP port.
	MaxPort = 65535
)

// checkText checks a free-text field (a message, an annotation value, a
// reason, the command line): at most max bytes of valid UTF-8 that cannot
// drive a terminal or disguise what it shows. Tab is the one control
// character allowed; a line break is refused, as every such field is shown
// on one line.
func checkText(field, s string, max int) error {
	if len(s) > max {
		return invalid("%s must be at most %d bytes, got %d bytes", field, max, len(s))
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return invalid("%s must be valid UTF-8, got byte 0x%02x at byte %d", field, s[i], i)
		}
		if what := forbiddenRune(r); what != "" {
			return invalid("%s must not contain %s, got %U at byte %d", field, what, r, i)
		}
		i += size
	}
	return nil
}

// UnsafeRune reports whether r must not reach a terminal as it is: a
// control character other than tab, a line or paragraph separator, or a
// bidirectional formatting character. Free text in commands may not hold
// one, and whoever prints text from elsewhere (runner output) escapes it.
func UnsafeRune(r rune) bool { return forbiddenRune(r) != "" }

// EscapeText makes text from elsewhere (a runner's output, a header) safe
// to show and to record: invalid UTF-8 and the runes UnsafeRune names
// become \xNN (bytes and runes below 0x100) or \uNNNN; the rest is kept.
func EscapeText(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r == utf8.RuneError || UnsafeRune(r) }) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case UnsafeRune(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case UnsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// forbiddenRune names the kind of character r is if free text may not hold
// it, or returns "".
func forbiddenRune(r rune) string {
	switch {
	case r == '\t':
		return ""
	case unicode.IsControl(r): // C0 (with NUL, CR, LF and ESC), DEL, C1
		return "control characters"
	case r == '\u2028' || r == '\u2029':
		return "line or paragraph separators"
	case '\u202a' <= r && r <= '\u202e', '\u2066' <= r && r <= '\u2069':
		// Embeddings, overrides and isolates reorder what a terminal
		// shows ("Trojan Source"), so that text reads as other text.
		return "bidirectional formatting characters"
	}
	return ""
}

// checkCommandLine checks deploy's command: a shell command line, one line
// of printable text (tab allowed), not blank.
func checkCommandLine(s string) error {
	if strings.TrimSpace(s) == "" {
		return invalid("deploy needs a command that starts a runner (--command)")
	}
	return checkText("command", s, MaxCommandLineBytes)
}

// checkUUID checks an id a client chooses for something new (a revision,
// a rollout, a runner): a UUID in its canonical form, lowercase
// 8-4-4-4-12 hex digits, so that one id has one spelling.
func checkUUID(field, id string) error {
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return invalid("%s must be a UUID in canonical form (lowercase 8-4-4-4-12 hex digits), got %s", field, quote(id))
	}
	return nil
}

// checkMachineType checks code.machine_type: a name of ASCII letters,
// digits, '.', '_' and '-' that begins and ends with a letter or digit.
func checkMachineType(s string) error {
	if len(s) > MaxMachineTypeBytes {
		return invalid("machine_type must be at most %d bytes, got %d bytes", MaxMachineTypeBytes, len(s))
	}
	if !isName(s, "._-") {
		return invalid("machine_type must be ASCII letters, digits, '.', '_' or '-', beginning and ending with a letter or digit; got %s", quote(s))
	}
	return nil
}

// checkAnnotations checks a deploy's annotations: their number, each key's
// length and characters, each value as free text, and their total size.
func checkAnnotations(a map[string]string) error {
	if len(a) > MaxAnnotations {
		return invalid("annotations must be at most %d, got %d", MaxAnnotations, len(a))
	}
	total := 0
	// In key order, so that the same command always gets the same sentence.
	for _, key := range slices.Sorted(maps.Keys(a)) {
		switch {
		case key == "":
			return invalid("annotation keys must not be empty")
		case len(key) > MaxAnnotationKeyBytes:
			return invalid("annotation key %s must be at most %d bytes, got %d bytes", quote(key), MaxAnnotationKeyBytes, len(key))
		case !isName(key, "._-/"):
			return invalid("annotation key %s must be ASCII letters, digits, '.', '_', '-' or '/', beginning and ending with a letter or digit", quote(key))
		}
		if err := checkText(fmt.Sprintf("annotation %q", key), a[key], MaxAnnotationValueBytes); err != nil {
			return err
		}
		total += len(key) + len(a[key])
	}
	if total > MaxAnnotationsBytes {
		return invalid("annotations must be at most %d bytes in all (keys and values), got %d bytes", MaxAnnotationsBytes, total)
	}
	return nil
}

// isName reports whether s is a non-empty run of ASCII letters, digits and
// the bytes of inner, beginning and ending with a letter or digit.
func isName(s, inner string) bool {
	if s == "" {
		return false
	}
	alnum := func(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }
	for i := 0; i < len(s); i++ {
		c := s[i]
		if alnum(c) {
			continue
		}
		if i == 0 || i == len(s)-1 || strings.IndexByte(inner, c) < 0 {
			return false
		}
	}
	return true
}

// quotedMax is how much of a value quote shows.
const quotedMax = 40

// quote shows a value a client sent inside a rejection's sentence: Go
// quoted (control characters and invalid UTF-8 escaped) and cut to a few
// dozen bytes, so that the sentence stays one short, harmless line.
func quote(s string) string {
	if len(s) <= quotedMax {
		return strconv.Quote(s)
	}
	cut := quotedMax
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(s[:cut]), len(s))
}

// showID shows an id in a rejection's sentence: as it is when it is a
// short run of safe characters (every id Revline assigns), quoted otherwise.
func showID(id string) string {
	if len(id) <= 64 && isName(id, "._-") {
		return id
	}
	return quote(id)
}

// FitText returns s made acceptable as free text of at most max bytes
// (what checkText accepts): invalid UTF-8 becomes U+FFFD, a line break
// becomes " | " and any other forbidden character a space, and text beyond
// max bytes is cut on a character boundary, ending in "…". Writers of text
// they do not control, such as the runner worker quoting a runner's
// output in a reason, pass it through FitText rather than be refused.
func FitText(s string, max int) string {
	const cut = "…"
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		var piece string
		switch {
		case r == '\n' || r == '\u2028' || r == '\u2029':
			piece = " | "
		case r == '\r':
			continue
		case forbiddenRune(r) != "":
			piece = " "
		default:
			piece = string(r)
		}
		if b.Len()+len(piece) > max {
			out := b.String()
			if max < len(cut) {
				return out // no room to say that it was cut
			}
			for len(out)+len(cut) > max {
				_, size := utf8.DecodeLastRuneInString(out)
				out = out[:len(out)-size]
			}
			return out + cut
		}
		b.WriteString(piece)
	}
	return b.String()
}
