package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/revline/revline/events"
)

// Headers of a delivery, per the Standard Webhooks specification
// (https://www.standardwebhooks.com).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
	// ContentType is CloudEvents' structured JSON mode.
	ContentType  = "application/cloudevents+json; charset=utf-8"
	secretPrefix = "whsec_"
)

// NewSecret returns a random signing secret.
func NewSecret() []byte {
	b := make([]byte, SecretBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}

// FormatSecret writes a secret the way receivers' libraries take it:
// "whsec_" and its base64.
func FormatSecret(secret []byte) string {
	return secretPrefix + base64.StdEncoding.EncodeToString(secret)
}

// ParseSecret reads a secret written as FormatSecret does.
func ParseSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	encoded, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return nil, fmt.Errorf("webhook secret: want %s followed by base64 (as `webhooks add` prints)", secretPrefix)
	}
	secret, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: the part after %s is not base64", secretPrefix)
	}
	if len(secret) < 16 || len(secret) > maxSecretBytes {
		return nil, fmt.Errorf("webhook secret: %d bytes, want 16 to %d", len(secret), maxSecretBytes)
	}
	return secret, nil
}

// Sign returns the webhook-signature header's value for a message:
// "v1," and the base64 of HMAC-SHA256(secret, id.timestamp.body).
func Sign(secret []byte, id string, timestamp time.Time, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(id + "." + strconv.FormatInt(timestamp.Unix(), 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verify checks a delivery's headers and body against secret, as a
// receiver does: one of the signatures (space separated) must match.
// Receivers should also refuse timestamps far from their clock.
func Verify(secret []byte, id, timestamp, signatures string, body []byte) error {
	unix, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("bad %s %q", HeaderTimestamp, timestamp)
	}
	want := Sign(secret, id, time.Unix(unix, 0), body)
	for sig := range strings.FieldsSeq(signatures) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("no valid signature in %s", HeaderSignature)
}

// CloudEvent is a CloudEvents 1.0 event in structured JSON mode, the body
// of every delivery. The envelope is written here from the specification
// (github.com/cloudevents/sdk-go is not available to this build).
type CloudEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject,omitempty"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	DataSchema      string    `json:"dataschema,omitempty"`
	// Extension attributes (lowercase letters and digits, per the spec).
	Sequence      string `json:"sequence"`
	Actor         string `json:"revlineactor,omitempty"`
	CorrelationID string `json:"revlinecorrelationid,omitempty"`
	CausationID   string `json:"revlinecausationid,omitempty"`
	SchemaVersion int    `json:"revlineschemaversion"`
	// Data is the event's payload as docs/bus.md §6 lists its fields.
	Data json.RawMessage `json:"data"`
}

// TypePrefix starts every CloudEvent type: "dev.revline." and the event
// type ("dev.revline.revision.created").
const TypePrefix = "dev.revline."

// NewCloudEvent wraps a stored event. Its id is the event's id, stable
// across retries and redeliveries, so that a receiver can deduplicate.
func NewCloudEvent(env events.Envelope) (CloudEvent, error) {
	data, err := events.Marshal(events.ContentTypeJSON, env.Event)
	if err != nil {
		return CloudEvent{}, fmt.Errorf("event %d: %w", env.Sequence, err)
	}
	return CloudEvent{
		SpecVersion: "1.0", ID: env.EventID, Source: "/revline/apps/" + env.App,
		Type: TypePrefix + env.Type, Subject: env.App, Time: env.OccurredAt.UTC(),
		DataContentType: "application/json", Sequence: strconv.FormatUint(env.Sequence, 10),
		Actor: env.Actor, CorrelationID: env.CorrelationID, CausationID: env.CausationID,
		SchemaVersion: env.SchemaVersion, Data: data,
	}, nil
}
