package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/workers/webhooks"
)

// decodeInto decodes r's body into v, failing the test unless the status
// is want.
func decodeInto(t *testing.T, r response, want int, v any) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; body: %s", r.status, want, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func TestWebhooksOverHTTP(t *testing.T) {
	t.Parallel()
	s := newStack(t)

	var added struct {
		Webhook webhooks.Webhook `json:"webhook"`
		Secret  string           `json:"secret"`
	}
	r := s.do(t, "POST", "/v1/webhooks", map[string]any{"url": "https://203.0.113.10/hooks/revline", "app": "web", "events": []string{"revision.*"}})
	decodeInto(t, r, http.StatusCreated, &added)
	hook := added.Webhook
	if hook.ID == "" || hook.Status != webhooks.StatusActive || hook.CreatedBy != "token:test" || hook.App != "web" || r.header.Get("Location") != "/v1/webhooks/"+hook.ID {
		t.Fatalf("added %+v (Location %q); want an active webhook made by token:test", hook, r.header.Get("Location"))
	}
	if _, err := webhooks.ParseSecret(added.Secret); err != nil {
		t.Fatalf("the answer's secret %q: %v", added.Secret, err)
	}

	var given struct {
		Secret string `json:"secret"`
	}
	decodeInto(t, s.do(t, "POST", "/v1/webhooks", map[string]any{"url": "https://203.0.113.11/", "secret": webhooks.FormatSecret(webhooks.NewSecret())}), http.StatusCreated, &given)
	if given.Secret != "" {
		t.Fatalf("a secret the request gave was answered back: %q", given.Secret)
	}

	var list []webhooks.Webhook
	decodeInto(t, s.do(t, "GET", "/v1/webhooks", nil), http.StatusOK, &list)
	if len(list) != 2 || list[0].ID != hook.ID {
		t.Fatalf("list = %+v; want the two webhooks, oldest first", list)
	}
	if strings.Contains(string(s.do(t, "GET", "/v1/webhooks", nil).body), added.Secret[len("whsec_"):]) {
		t.Fatal("the list holds the signing secret")
	}

	var changed webhooks.Webhook
	decodeInto(t, s.do(t, "POST", "/v1/webhooks/"+hook.ID+"/disable", map[string]string{"reason": "receiver migrating"}), http.StatusOK, &changed)
	if changed.Status != webhooks.StatusDisabled || changed.ChangedBy != "token:test" || changed.Reason != "receiver migrating" {
		t.Fatalf("disabled: %+v", changed)
	}
	decodeInto(t, s.do(t, "POST", "/v1/webhooks/"+hook.ID+"/enable", nil), http.StatusOK, &changed)
	if changed.Status != webhooks.StatusActive {
		t.Fatalf("enabled: %+v", changed)
	}

	var deliveries []webhooks.Delivery
	decodeInto(t, s.do(t, "GET", "/v1/webhooks/"+hook.ID+"/deliveries", nil), http.StatusOK, &deliveries)
	if len(deliveries) != 0 {
		t.Fatalf("deliveries = %+v; want none (no worker runs here)", deliveries)
	}
	problem(t, s.do(t, "POST", "/v1/webhooks/"+hook.ID+"/redeliver", map[string]int{"sequence": 0}), http.StatusBadRequest, "invalid_argument")
	if r := s.do(t, "POST", "/v1/webhooks/"+hook.ID+"/redeliver", map[string]int{"sequence": 7}); r.status != http.StatusAccepted {
		t.Fatalf("redeliver: status %d, body %s", r.status, r.body)
	}

	decodeInto(t, s.do(t, "DELETE", "/v1/webhooks/"+hook.ID, nil), http.StatusOK, &changed)
	if changed.Status != webhooks.StatusRemoved {
		t.Fatalf("removed: %+v", changed)
	}
	var history struct {
		Webhook webhooks.Webhook   `json:"webhook"`
		History []webhooks.Webhook `json:"history"`
	}
	decodeInto(t, s.do(t, "GET", "/v1/webhooks/"+hook.ID, nil), http.StatusOK, &history)
	statuses := []string{}
	for _, v := range history.History {
		statuses = append(statuses, v.Status)
	}
	if history.Webhook.Status != webhooks.StatusRemoved || strings.Join(statuses, ",") != "active,disabled,active,removed" {
		t.Fatalf("history: now %s, versions %v; want removed after active,disabled,active,removed", history.Webhook.Status, statuses)
	}
	problem(t, s.do(t, "POST", "/v1/webhooks/"+hook.ID+"/enable", nil), http.StatusNotFound, "webhook_not_found")
}

func TestWebhooksOverHTTPRefusals(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	for name, body := range map[string]any{
		"loopback target":   map[string]any{"url": "http://127.0.0.1:9/hook"},
		"private target":    map[string]any{"url": "http://10.1.2.3/hook"},
		"not http":          map[string]any{"url": "ftp://203.0.113.10/"},
		"user information":  map[string]any{"url": "https://user:pw@203.0.113.10/"},
		"bad app name":      map[string]any{"url": "https://203.0.113.10/", "app": "../etc"},
		"unknown field":     map[string]any{"url": "https://203.0.113.10/", "target": "x"},
		"secret not whsec_": map[string]any{"url": "https://203.0.113.10/", "secret": "hunter2"},
	} {
		t.Run(name, func(t *testing.T) {
			r := s.do(t, "POST", "/v1/webhooks", body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, body %s; want 400", r.status, r.body)
			}
		})
	}
	problem(t, s.do(t, "GET", "/v1/webhooks/000000000000", nil), http.StatusNotFound, "webhook_not_found")
	problem(t, s.do(t, "POST", "/v1/webhooks/nope/disable", nil), http.StatusBadRequest, "bad_request")

	operator := s.token(t, "ops", auth.RoleOperator, "")
	webAdmin := s.token(t, "web-admin", auth.RoleAdmin, "web")
	for _, token := range []string{operator, webAdmin} {
		problem(t, s.do(t, "GET", "/v1/webhooks", nil, "Authorization", "Bearer "+token), http.StatusForbidden, "forbidden")
		problem(t, s.do(t, "POST", "/v1/webhooks", map[string]any{"url": "https://203.0.113.10/"}, "Authorization", "Bearer "+token), http.StatusForbidden, "forbidden")
	}
	problem(t, s.do(t, "GET", "/v1/webhooks", nil, "Authorization", "Bearer nope"), http.StatusUnauthorized, "unauthenticated")
}
