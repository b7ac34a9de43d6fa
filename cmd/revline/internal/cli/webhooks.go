package cli

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/workers/webhooks"
)

// openWebhooks binds to the webhook buckets of the session's server.
func (s *session) openWebhooks(ctx context.Context) (*webhooks.Store, error) {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return nil, err
	}
	return webhooks.Open(ctx, js)
}

// idArg checks a webhooks command's first argument, a webhook id.
func idArg(pos []string) error { return webhooks.ValidateID(pos[0]) }

// withWebhooks runs a webhooks command: its flags and arguments checked
// (with check, if given, before connecting), then fn with the store.
func withWebhooks(e env, c command, args []string, nargs int, check func(pos []string) error, extra func(*flag.FlagSet), fn func(ctx context.Context, hooks *webhooks.Store, f *clientFlags, pos []string) error) error {
	c.argNotApp = true
	f, pos, err := clientArgs(e, c, args, nargs, extra, nil)
	if err != nil {
		return err
	}
	if check != nil {
		if err := check(pos); err != nil {
			return usageError{err.Error()}
		}
	}
	return f.run(e.ctx, pos, func(ctx context.Context, s *session, f *clientFlags, pos []string) error {
		hooks, err := s.openWebhooks(ctx)
		if err != nil {
			return err
		}
		return fn(ctx, hooks, f, pos)
	})
}

func webhooksAddCommand() command {
	c := command{
		name:    "webhooks add",
		summary: "Send events to a URL: CloudEvents 1.0 (JSON), signed per Standard Webhooks; every event after this one, in order, through outages. Prints the signing secret once, unless given on stdin.",
		usage:   "URL",
		example: "revline webhooks add https://example.com/hooks/revline --app my-model --events 'revision.*' --events app.current_revision_set",
	}
	c.run = func(e env, args []string) error {
		var hook webhooks.Webhook
		var globs globsFlag
		var fromStdin bool
		extra := func(fs *flag.FlagSet) {
			fs.StringVar(&hook.App, "app", "", "only this app's events (default: every app's)")
			fs.Var(&globs, "events", "only events whose type matches this `GLOB` (revision.*); repeat it or separate with commas (default: every type)")
			fs.BoolVar(&fromStdin, "secret-from-stdin", false, "read the signing secret (whsec_ and base64) from stdin instead of making one")
		}
		check := func(pos []string) error {
			hook.URL, hook.Events = pos[0], globs
			return hook.Validate()
		}
		return withWebhooks(e, c, args, 1, check, extra, func(ctx context.Context, hooks *webhooks.Store, f *clientFlags, pos []string) error {
			secret := webhooks.NewSecret()
			if fromStdin {
				if isTerminal(e.stdin) {
					fmt.Fprint(e.stderr, "Signing secret (whsec_...), then Enter and Ctrl-D: ")
				}
				b, err := io.ReadAll(io.LimitReader(e.stdin, 1<<10))
				if err != nil {
					return fmt.Errorf("read the secret from stdin: %w", err)
				}
				if secret, err = webhooks.ParseSecret(string(b)); err != nil {
					return err
				}
			}
			added, err := hooks.Add(ctx, hook, secret, f.actor, time.Now())
			if err != nil {
				return err
			}
			shown := ""
			if !fromStdin {
				shown = webhooks.FormatSecret(secret)
			}
			if f.output == outputJSON {
				return printJSON(e.stdout, struct {
					Webhook webhooks.Webhook `json:"webhook"`
					Secret  string           `json:"secret,omitempty"`
				}{added, shown})
			}
			fmt.Fprintf(e.stdout, "Added webhook %s: %s of %s to %s, from event %d on.\n", added.ID, eventsOf(added), appsOf(added), added.URL, added.StartSequence)
			if shown != "" {
				fmt.Fprintf(e.stdout, "Signing secret (shown only now; receivers verify webhook-signature with it):\n%s\n", shown)
			}
			return nil
		})
	}
	return c
}

func eventsOf(w webhooks.Webhook) string {
	if len(w.Events) == 0 {
		return "every event"
	}
	return "events " + strings.Join(w.Events, ",")
}

func appsOf(w webhooks.Webhook) string {
	if w.App == "" {
		return "every app"
	}
	return w.App
}

func webhooksListCommand() command {
	c := command{
		name:    "webhooks list",
		summary: "List webhooks: target, app, event types, status (a disabled one says why), who added them.",
		example: "revline webhooks list --all",
	}
	c.run = func(e env, args []string) error {
		var all bool
		extra := func(fs *flag.FlagSet) {
			fs.BoolVar(&all, "all", false, "include removed webhooks")
		}
		return withWebhooks(e, c, args, 0, nil, extra, func(ctx context.Context, hooks *webhooks.Store, f *clientFlags, _ []string) error {
			list, err := hooks.List(ctx)
			shown := []webhooks.Webhook{}
			for _, w := range list {
				if all || w.Status != webhooks.StatusRemoved {
					shown = append(shown, w)
				}
			}
			return render(e, f, shown, err, func(w io.Writer, list []webhooks.Webhook) {
				rows := make([][]string, len(list))
				for i, h := range list {
					app := h.App
					if app == "" {
						app = "*"
					}
					status := h.Status
					if h.Status != webhooks.StatusActive && h.ChangedAt != nil {
						status += " by " + h.ChangedBy + " " + when(*h.ChangedAt)
						if h.Reason != "" {
							status += ": " + h.Reason
						}
					}
					rows[i] = []string{h.ID, h.URL, app, strings.Join(append([]string{}, h.Events...), ","), h.CreatedBy, when(h.CreatedAt), status}
				}
				table(w, "ID\tURL\tAPP\tEVENTS\tADDED BY\tADDED\tSTATUS", rows)
			})
		})
	}
	return c
}

func webhooksHistoryCommand() command {
	c := command{
		name:    "webhooks history",
		summary: "Who added a webhook, and every disable, enable and removal since: who, when and why.",
		usage:   "ID",
		example: "revline webhooks history 3f2a9c0d81be",
	}
	c.run = func(e env, args []string) error {
		return withWebhooks(e, c, args, 1, idArg, nil, func(ctx context.Context, hooks *webhooks.Store, f *clientFlags, pos []string) error {
			versions, err := hooks.History(ctx, pos[0])
			return render(e, f, versions, err, func(w io.Writer, versions []webhooks.Webhook) {
				rows := make([][]string, len(versions))
				for i, v := range versions {
					rows[i] = []string{when(v.CreatedAt), "added", v.CreatedBy, "-"}
					if v.ChangedAt != nil {
						rows[i] = []string{when(*v.ChangedAt), v.Status, v.ChangedBy, cmp.Or(v.Reason, "-")}
					}
				}
				table(w, "WHEN\tSTATUS\tBY\tWHY", rows)
			})
		})
	}
	return c
}

func webhooksRemoveCommand() command {
	c := command{
		name:    "webhooks remove",
		summary: "Remove a webhook: nothing more is sent; its consumer, secret and deliveries are deleted (the definition's history keeps who removed it).",
		usage:   "ID",
		example: "revline webhooks remove 3f2a9c0d81be",
	}
	c.run = func(e env, args []string) error {
		return withWebhooks(e, c, args, 1, idArg, nil, func(ctx context.Context, hooks *webhooks.Store, f *clientFlags, pos []string) error {
			w, err := hooks.SetStatus(ctx, pos[0], webhooks.StatusRemoved, f.actor, "", time.Now())
			return render(e, f, w, err, func(out io.Writer, w webhooks.Webhook) {
				fmt.Fprintf(out, "Removed webhook %s (%s).\n", w.ID, w.URL)
			})
		})
	}
	return c
}

// webhooksStatusCommand is `webhooks enable` (status active) or
// `webhooks disable`.
func webhooksStatusCommand(status string) command {
	c := command{
		name:    "webhooks enable",
		summary: "Enable a disabled webhook: it delivers what happened meanwhile, in order, from the event it failed on.",
		usage:   "ID",
		example: "revline webhooks enable 3f2a9c0d81be",
	}
	if status == webhooks.StatusDisabled {
		c.name, c.example = "webhooks disable", "revline webhooks disable 3f2a9c0d81be --reason 'receiver migrating'"
		c.summary = "Pause a webhook: events are kept for it until it is enabled again."
	}
	c.run = func(e env, args []string) error {
		var reason string
		extra := func(fs *flag.FlagSet) { fs.StringVar(&reason, "reason", "", "why, kept with the webhook") }
		return withWebhooks(e, c, args, 1, idArg, extra, func(ctx context.Context, hooks *webhooks.Store, f *clientFlags, pos []string) error {
			w, err := hooks.SetStatus(ctx, pos[0], status, f.actor, reason, time.Now())
			return render(e, f, w, err, func(out io.Writer, w webhooks.Webhook) {
				fmt.Fprintf(out, "Webhook %s is %s.\n", w.ID, w.Status)
			})
		})
	}
	return c
}

func webhooksDeliveriesCommand() command {
	c := command{
		name:    "webhooks deliveries",
		summary: fmt.Sprintf("A webhook's last %d delivery attempts, oldest first: event, attempt, HTTP status, latency, error.", webhooks.DeliveryHistory),
		usage:   "ID",
		example: "revline webhooks deliveries 3f2a9c0d81be -o json",
	}
	c.run = func(e env, args []string) error {
		return withWebhooks(e, c, args, 1, idArg, nil, func(ctx context.Context, hooks *webhooks.Store, f *clientFlags, pos []string) error {
			list, err := hooks.Deliveries(ctx, pos[0])
			return render(e, f, list, err, func(w io.Writer, list []webhooks.Delivery) {
				rows := make([][]string, len(list))
				for i, d := range list {
					attempt := strconv.Itoa(d.Attempt)
					if d.Redelivery {
						attempt = "redelivery"
					}
					status := "-"
					if d.Status != 0 {
						status = strconv.Itoa(d.Status)
					}
					rows[i] = []string{when(d.At), strconv.FormatUint(d.Sequence, 10), d.Type, d.App, d.EventID, attempt, status, fmt.Sprintf("%dms", d.LatencyMS), cmp.Or(d.Error, "-")}
				}
				table(w, "WHEN\tSEQ\tTYPE\tAPP\tEVENT ID\tATTEMPT\tSTATUS\tLATENCY\tERROR", rows)
			})
		})
	}
	return c
}

func webhooksRedeliverCommand() command {
	c := command{
		name:    "webhooks redeliver",
		summary: "Deliver one event to a webhook again (one attempt, with the event's id: receivers that deduplicate ignore it). SEQ is the SEQ of `revline audit` or `webhooks deliveries`.",
		usage:   "ID SEQ",
		example: "revline webhooks redeliver 3f2a9c0d81be 42",
	}
	c.run = func(e env, args []string) error {
		return withWebhooks(e, c, args, 2, idArg, nil, func(ctx context.Context, hooks *webhooks.Store, f *clientFlags, pos []string) error {
			seq, err := strconv.ParseUint(pos[1], 10, 64)
			if err != nil || seq == 0 {
				return fmt.Errorf("SEQ %q: want a positive event sequence", pos[1])
			}
			if err := hooks.RequestRedelivery(ctx, pos[0], seq, f.actor, time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Asked for event %d to be delivered to webhook %s again; its attempt shows in: revline webhooks deliveries %s\n", seq, pos[0], pos[0])
			return nil
		})
	}
	return c
}
