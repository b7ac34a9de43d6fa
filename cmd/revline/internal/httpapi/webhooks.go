package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/projections/queryapi"
	"github.com/revline/revline/workers/webhooks"
)

// codeWebhookNotFound answers a webhook id that names no webhook, or a
// removed one.
const codeWebhookNotFound = "webhook_not_found"

// webhookRoutes serves /v1/webhooks: what `revline webhooks` does, for
// admins only (a webhook sends every event it matches out of the network,
// and its definition may hold a URL with a token in it).
func (a *api) webhookRoutes(m *http.ServeMux) {
	admin := func(h http.HandlerFunc) http.HandlerFunc { return a.allow(auth.Admin, h) }
	m.HandleFunc("GET /v1/webhooks", admin(a.listWebhooks))
	m.HandleFunc("POST /v1/webhooks", admin(a.addWebhook))
	m.HandleFunc("GET /v1/webhooks/{id}", admin(a.webhook(a.webhookHistory)))
	m.HandleFunc("DELETE /v1/webhooks/{id}", admin(a.webhook(a.setWebhookStatus(webhooks.StatusRemoved))))
	m.HandleFunc("POST /v1/webhooks/{id}/disable", admin(a.webhook(a.setWebhookStatus(webhooks.StatusDisabled))))
	m.HandleFunc("POST /v1/webhooks/{id}/enable", admin(a.webhook(a.setWebhookStatus(webhooks.StatusActive))))
	m.HandleFunc("GET /v1/webhooks/{id}/deliveries", admin(a.webhook(a.webhookDeliveries)))
	m.HandleFunc("POST /v1/webhooks/{id}/redeliver", admin(a.webhook(a.redeliver)))
}

// webhook checks the {id} of a request before h sees it, and answers h's
// error as a problem.
func (a *api) webhook(h func(w http.ResponseWriter, r *http.Request, id string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if err := webhooks.ValidateID(id); err != nil {
			a.fail(w, r, badRequest(err.Error()))
			return
		}
		if err := h(w, r, id); err != nil {
			a.fail(w, r, err)
		}
	}
}

// actorOf is who a request acts as: its token's actor.
func actorOf(r *http.Request) string {
	t, _ := TokenFrom(r.Context())
	return t.Actor()
}

func (a *api) listWebhooks(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := requestContext(r, false)
	defer cancel()
	hooks, err := a.cfg.Webhooks.List(ctx)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writePage(w, r, queryapi.Page[webhooks.Webhook]{Items: hooks})
}

// addWebhookRequest is the body of POST /v1/webhooks.
type addWebhookRequest struct {
	URL    string   `json:"url"`
	App    string   `json:"app"`
	Events []string `json:"events"`
	// Secret, optional, is the signing secret (whsec_ and base64); without
	// it the server makes one and answers it, once.
	Secret string `json:"secret"`
}

// addWebhookResult answers POST /v1/webhooks.
type addWebhookResult struct {
	Webhook webhooks.Webhook `json:"webhook"`
	// Secret is the signing secret the server made; empty when the request
	// gave one.
	Secret string `json:"secret,omitempty"`
}

func (a *api) addWebhook(w http.ResponseWriter, r *http.Request) {
	var req addWebhookRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		a.fail(w, r, err)
		return
	}
	secret, shown := webhooks.NewSecret(), ""
	if strings.TrimSpace(req.Secret) != "" {
		var err error
		if secret, err = webhooks.ParseSecret(req.Secret); err != nil {
			a.fail(w, r, badRequest(err.Error()))
			return
		}
	} else {
		shown = webhooks.FormatSecret(secret)
	}
	ctx, cancel := requestContext(r, false)
	defer cancel()
	added, err := a.cfg.Webhooks.Add(ctx, webhooks.Webhook{URL: req.URL, App: req.App, Events: req.Events}, secret, actorOf(r), time.Now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/webhooks/"+added.ID)
	writeJSON(w, http.StatusCreated, addWebhookResult{Webhook: added, Secret: shown})
}

// webhookHistory answers the webhook as it is now and every kept version
// of it: who added it, then each disable, enable and removal.
func (a *api) webhookHistory(w http.ResponseWriter, r *http.Request, id string) error {
	ctx, cancel := requestContext(r, false)
	defer cancel()
	versions, err := a.cfg.Webhooks.History(ctx, id)
	if err != nil {
		return err
	}
	if len(versions) == 0 { // every version unreadable
		return fmt.Errorf("webhook %s: %w", id, webhooks.ErrNotFound)
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhook": versions[len(versions)-1], "history": versions})
	return nil
}

// statusChangeRequest is the optional body of a disable, enable or removal.
type statusChangeRequest struct {
	Reason string `json:"reason"`
}

func (a *api) setWebhookStatus(status string) func(http.ResponseWriter, *http.Request, string) error {
	return func(w http.ResponseWriter, r *http.Request, id string) error {
		var req statusChangeRequest
		if err := decodeBody(w, r, &req, true); err != nil {
			return err
		}
		ctx, cancel := requestContext(r, false)
		defer cancel()
		changed, err := a.cfg.Webhooks.SetStatus(ctx, id, status, actorOf(r), req.Reason, time.Now())
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, changed)
		return nil
	}
}

func (a *api) webhookDeliveries(w http.ResponseWriter, r *http.Request, id string) error {
	ctx, cancel := requestContext(r, false)
	defer cancel()
	list, err := a.cfg.Webhooks.Deliveries(ctx, id)
	if err != nil {
		return err
	}
	writePage(w, r, queryapi.Page[webhooks.Delivery]{Items: list})
	return nil
}

// redeliverRequest is the body of POST /v1/webhooks/{id}/redeliver.
type redeliverRequest struct {
	// Sequence is the event's stream sequence (the SEQ of the audit log or
	// of the deliveries).
	Sequence uint64 `json:"sequence"`
}

func (a *api) redeliver(w http.ResponseWriter, r *http.Request, id string) error {
	var req redeliverRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		return err
	}
	ctx, cancel := requestContext(r, false)
	defer cancel()
	if err := a.cfg.Webhooks.RequestRedelivery(ctx, id, req.Sequence, actorOf(r), time.Now()); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"webhook": id, "sequence": req.Sequence})
	return nil
}
