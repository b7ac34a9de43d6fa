package events

import (
	"fmt"
	"regexp"
	"strings"
)

// MaxAppNameLength bounds an app name, which is one NATS subject token.
const MaxAppNameLength = 63

var appNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// InvalidNameError reports a name that cannot be used as a NATS subject token.
type InvalidNameError struct {
	Kind   string // "app", "revision", ...
	Name   string
	Reason string
}

// Error implements the error interface.
func (e *InvalidNameError) Error() string {
	return fmt.Sprintf("invalid %s name %q: %s", e.Kind, truncate(e.Name, 80), e.Reason)
}

// ValidateAppName checks that name is safe as a NATS subject token: 1 to 63
// lowercase letters, digits, '-' and '_', starting with a letter or digit.
// It returns an *InvalidNameError otherwise.
func ValidateAppName(name string) error {
	invalid := func(reason string) error { return &InvalidNameError{Kind: "app", Name: name, Reason: reason} }
	switch {
	case name == "":
		return invalid("it is empty")
	case len(name) > MaxAppNameLength:
		return invalid(fmt.Sprintf("it is %d characters long, the limit is %d", len(name), MaxAppNameLength))
	case !appNamePattern.MatchString(name):
		return invalid("use lowercase letters, digits, '-' and '_', starting with a letter or digit")
	}
	return nil
}

// WebhooksAggregate is the name, in place of an app's, of the aggregate
// whose events record webhook changes: their subject is
// revline.events._webhooks.<type>. An app name cannot start with '_', so
// no app's events can be taken for them, nor theirs for an app's.
const WebhooksAggregate = "_webhooks"

// ValidateAggregateName accepts what may own events in the log: an app
// name (ValidateAppName, whose error it returns otherwise) or
// WebhooksAggregate.
func ValidateAggregateName(name string) error {
	if name == WebhooksAggregate {
		return nil
	}
	return ValidateAppName(name)
}

// MaxSecretNameLength bounds a secret's name, an environment variable's
// name and one NATS subject token of the secret store's key.
const MaxSecretNameLength = 128

var secretNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reservedSecretNames are variables Revline sets in every runner, or that a
// runner inherits from the server: a secret must not replace them.
var reservedSecretNames = map[string]bool{
	"PORT": true, "PATH": true, "HOME": true, "USER": true, "LOGNAME": true, "SHELL": true,
	"LANG": true, "TZ": true, "TMPDIR": true, "TERM": true,
}

// ValidateSecretName checks that name can be both an environment
// variable's name and a token of a NATS subject: letters, digits and '_',
// not starting with a digit, at most 128 characters, none of the variables
// Revline itself gives runners (PORT, PATH, HOME, ..., REVLINE_*). It
// returns an *InvalidNameError otherwise.
func ValidateSecretName(name string) error {
	invalid := func(reason string) error { return &InvalidNameError{Kind: "secret", Name: name, Reason: reason} }
	switch {
	case name == "":
		return invalid("it is empty")
	case len(name) > MaxSecretNameLength:
		return invalid(fmt.Sprintf("it is %d characters long, the limit is %d", len(name), MaxSecretNameLength))
	case !secretNamePattern.MatchString(name):
		return invalid("use letters, digits and '_', not starting with a digit (it becomes an environment variable)")
	case reservedSecretNames[name] || strings.HasPrefix(name, "REVLINE_"):
		return invalid("Revline sets this variable itself in every runner")
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Subject prefixes of the bus. docs/bus.md documents them.
const (
	EventSubjectPrefix   = "revline.events."
	CommandSubjectPrefix = "revline.commands."
	OutcomeSubjectPrefix = "revline.outcomes."
	// DeadLetterSubject receives commands that could not be decoded or
	// processed, with the reason in the Revline-Dead-Letter-Reason header.
	DeadLetterSubject = "revline.deadletter.commands"
)

// EventSubject is the subject an event of the given type is stored under.
func EventSubject(app, eventType string) string { return EventSubjectPrefix + app + "." + eventType }

// AppEventsFilter matches every event of one app.
func AppEventsFilter(app string) string { return EventSubjectPrefix + app + ".>" }

// appOfSubject returns the app an event subject belongs to, "" if the
// subject is not an event subject.
func appOfSubject(subject string) string {
	rest, ok := strings.CutPrefix(subject, EventSubjectPrefix)
	if !ok {
		return ""
	}
	app, _, _ := strings.Cut(rest, ".")
	return app
}

// CommandSubject is the subject a command for app is published on.
func CommandSubject(app, commandType string) string {
	return CommandSubjectPrefix + app + "." + commandType
}

// MaxKeyNameLength bounds the name of a signing key (a token's name),
// which is one NATS subject token of its outcome and inbox subjects.
const MaxKeyNameLength = 64

// IsKeyName reports whether name can be a signing key's (a token's) name:
// 1 to MaxKeyNameLength lowercase letters, digits, '-' and '_', starting
// with a letter or digit, so safe as a NATS subject token.
func IsKeyName(name string) bool {
	return len(name) <= MaxKeyNameLength && appNamePattern.MatchString(name)
}

// NoOutcomeKey stands for the key in the outcome subject of a command that
// names no key, or one that cannot be a token's name (IsKeyName): no token
// is named so, so no client reads what is published there.
const NoOutcomeKey = "_"

// OutcomeKey returns the key whose outcome subjects the outcome of a
// command naming key (its Revline-Key header) is published on: key itself
// when it can be a token's name, NoOutcomeKey otherwise.
func OutcomeKey(key string) string {
	if IsKeyName(key) {
		return key
	}
	return NoOutcomeKey
}

// OutcomeSubject is the subject the outcome of a command signed by key (a
// token's name; OutcomeKey) is published on: only that token may read it.
// The command id comes first, so that the outcomes of one command id, under
// any key (CommandOutcomes), share a literal prefix: the stream finds them
// without walking every command's subjects.
func OutcomeSubject(key, commandID string) string {
	return OutcomeSubjectPrefix + commandID + "." + OutcomeKey(key)
}

// KeyOutcomes matches the outcome subjects of every command signed by key.
func KeyOutcomes(key string) string { return OutcomeSubjectPrefix + "*." + OutcomeKey(key) }

// CommandOutcomes matches the outcome subject of commandID, whoever sent
// it: a command id has one outcome, whatever key it was sent with.
func CommandOutcomes(commandID string) string { return OutcomeSubjectPrefix + commandID + ".*" }

// LegacyOutcomeSubject is where versions before outcomes were per key
// recorded the outcome of commandID: still read, never written.
func LegacyOutcomeSubject(commandID string) string { return OutcomeSubjectPrefix + commandID }

// Header names. Event metadata travels in headers so that routing and
// filtering never decode the payload.
const (
	HeaderMsgID         = "Nats-Msg-Id"
	HeaderContentType   = "Content-Type"
	HeaderEventID       = "Revline-Event-Id"
	HeaderEventType     = "Revline-Event-Type"
	HeaderSchemaVersion = "Revline-Schema-Version"
	HeaderApp           = "Revline-App"
	HeaderOccurredAt    = "Revline-Occurred-At"
	HeaderActor         = "Revline-Actor"
	HeaderCorrelationID = "Revline-Correlation-Id"
	HeaderCausationID   = "Revline-Causation-Id"
	HeaderDeadLetter    = "Revline-Dead-Letter-Reason"
	// HeaderPrevHash and HeaderEventHash chain an event to the app's
	// previous one (chain.go, docs/bus.md "Tamper evidence").
	HeaderPrevHash  = "Revline-Prev-Hash"
	HeaderEventHash = "Revline-Event-Hash"
	// HeaderKey, HeaderSignedAt and HeaderSignature sign a command or a
	// token request (signature.go, docs/bus.md "Signing"): the name of the
	// token whose key signed, when (RFC 3339), and the standard base64 of
	// the Ed25519 signature over SigningPayload.
	HeaderKey       = "Revline-Key"
	HeaderSignedAt  = "Revline-Signed-At"
	HeaderSignature = "Revline-Signature"
)

// Content types accepted for commands. Events and outcomes are msgpack
// unless the command that caused an outcome was JSON.
const (
	ContentTypeMsgpack = "application/msgpack"
	ContentTypeJSON    = "application/json"
)
