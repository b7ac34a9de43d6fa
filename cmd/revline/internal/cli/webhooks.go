package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/workers/webhooks"
	"github.com/spf13/cobra"
)

// openWebhooks binds to the webhook buckets of the session's server.
func (s *session) openWebhooks(ctx context.Context) (*webhooks.Store, error) {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return nil, err
	}
	hooks, err := webhooks.Open(ctx, js)
	if err != nil {
		return nil, err
	}
	// Signed: the audit records the token that made a change, not the
	// --actor it claims.
	hooks.SignWith(s.signer)
	return hooks, nil
}

// webhookCommand is clientCommand for the webhooks commands, whose first
// argument, if any, is a webhook's id.
func webhookCommand(use, short, example string, nargs int) (*cobra.Command, *clientFlags) {
	cmd, f := clientCommand(use, short, example, nargs, 0)
	f.firstArg = asUsage(webhooks.ValidateID)
	return cmd, f
}

// webhooksRunE makes the RunE of a webhooks command: as runE, with the
// webhook store of the server.
func webhooksRunE(cmd *cobra.Command, f *clientFlags, fn func(ctx context.Context, e env, hooks *webhooks.Store, pos []string) error) {
	f.runE(cmd, nil, func(ctx context.Context, e env, s *session, pos []string) error {
		hooks, err := s.openWebhooks(ctx)
		if err != nil {
			return err
		}
		if s.signer != nil {
			// The server records the token that signs a change, whatever
			// the definition claims: the definition says the same.
			f.actor = auth.Token{Name: s.signer.Key}.Actor()
		}
		return fn(ctx, e, hooks, pos)
	})
}

func webhooksAddCommand() *cobra.Command {
	cmd, f := webhookCommand("add URL", "Add a webhook",
		"revline webhooks add https://example.com/hooks/revline --app my-model --events 'revision.*' --events app.current_revision_set", 1)
	cmd.Long = "Send events to a URL: CloudEvents 1.0 (JSON), signed per Standard Webhooks; every event after this one, in order, through outages. Prints the signing secret once, unless given on stdin."
	var hook webhooks.Webhook
	var globs globsFlag
	var fromStdin bool
	cmd.Flags().StringVar(&hook.App, "app", "", "only this app's events (default: every app's)")
	cmd.Flags().Var(&globs, "events", "only events whose type matches this `GLOB` (revision.*); repeat it or separate with commas (default: every type)")
	cmd.Flags().BoolVar(&fromStdin, "secret-from-stdin", false, "read the signing secret (whsec_ and base64) from stdin instead of making one")
	// The first argument is a URL, checked with the rest of the webhook.
	f.firstArg = asUsage(func(url string) error {
		hook.URL, hook.Events = url, globs
		return hook.Validate()
	})
	webhooksRunE(cmd, f, func(ctx context.Context, e env, hooks *webhooks.Store, pos []string) error {
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
	return cmd
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

func webhooksListCommand() *cobra.Command {
	cmd, f := webhookCommand("list", "List webhooks",
		"revline webhooks list --all", 0)
	cmd.Long = "List webhooks: target, app, event types, status (a disabled one says why), who added them."
	var all bool
	cmd.Flags().BoolVar(&all, "all", false, "include removed webhooks")
	webhooksRunE(cmd, f, func(ctx context.Context, e env, hooks *webhooks.Store, _ []string) error {
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
					status += " by " + h.ChangedBy + " " + f.style().at(*h.ChangedAt)
					if h.Reason != "" {
						status += ": " + h.Reason
					}
				}
				rows[i] = []string{h.ID, h.URL, app, strings.Join(append([]string{}, h.Events...), ","), h.CreatedBy, f.style().at(h.CreatedAt), status}
			}
			f.style().statusTable(w, "ID\tURL\tAPP\tEVENTS\tADDED BY\tADDED\tSTATUS", rows, 6)
		})
	})
	return cmd
}

func webhooksHistoryCommand() *cobra.Command {
	cmd, f := webhookCommand("history ID", "Show who changed a webhook, and when",
		"revline webhooks history 3f2a9c0d81be", 1)
	cmd.Long = "Who added a webhook, and every disable, enable and removal since: who, when and why."
	webhooksRunE(cmd, f, func(ctx context.Context, e env, hooks *webhooks.Store, pos []string) error {
		versions, err := hooks.History(ctx, pos[0])
		return render(e, f, versions, err, func(w io.Writer, versions []webhooks.Webhook) {
			rows := make([][]string, len(versions))
			for i, v := range versions {
				rows[i] = []string{f.style().at(v.CreatedAt), "added", v.CreatedBy, "-"}
				if v.ChangedAt != nil {
					rows[i] = []string{f.style().at(*v.ChangedAt), v.Status, v.ChangedBy, cmp.Or(v.Reason, "-")}
				}
			}
			table(w, "WHEN\tSTATUS\tBY\tWHY", rows)
		})
	})
	return cmd
}

func webhooksRemoveCommand() *cobra.Command {
	cmd, f := webhookCommand("remove ID", "Remove a webhook",
		"revline webhooks remove 3f2a9c0d81be", 1)
	cmd.Long = "Remove a webhook: nothing more is sent; its consumer, secret and deliveries are deleted (the definition's history keeps who removed it)."
	webhooksRunE(cmd, f, func(ctx context.Context, e env, hooks *webhooks.Store, pos []string) error {
		w, err := hooks.SetStatus(ctx, pos[0], webhooks.StatusRemoved, f.actor, "", time.Now())
		return render(e, f, w, err, func(out io.Writer, w webhooks.Webhook) {
			fmt.Fprintf(out, "Removed webhook %s (%s).\n", w.ID, w.URL)
		})
	})
	return cmd
}

// webhooksStatusCommand is `webhooks enable` (status active) or
// `webhooks disable`.
func webhooksStatusCommand(status string) *cobra.Command {
	use, short, long := "enable ID", "Enable a disabled webhook", "Enable a disabled webhook: it delivers what happened meanwhile, in order, from the event it failed on."
	example := "revline webhooks enable 3f2a9c0d81be"
	if status == webhooks.StatusDisabled {
		use, short, long = "disable ID", "Pause a webhook", "Pause a webhook: events are kept for it until it is enabled again."
		example = "revline webhooks disable 3f2a9c0d81be --reason 'receiver migrating'"
	}
	cmd, f := webhookCommand(use, short, example, 1)
	cmd.Long = long
	var reason string
	cmd.Flags().StringVar(&reason, "reason", "", "why, kept with the webhook")
	webhooksRunE(cmd, f, func(ctx context.Context, e env, hooks *webhooks.Store, pos []string) error {
		w, err := hooks.SetStatus(ctx, pos[0], status, f.actor, reason, time.Now())
		return render(e, f, w, err, func(out io.Writer, w webhooks.Webhook) {
			fmt.Fprintf(out, "Webhook %s is %s.\n", w.ID, w.Status)
		})
	})
	return cmd
}

func webhooksDeliveriesCommand() *cobra.Command {
	cmd, f := webhookCommand("deliveries ID", "Show a webhook's last delivery attempts",
		"revline webhooks deliveries 3f2a9c0d81be -o json", 1)
	cmd.Long = fmt.Sprintf("A webhook's last %d delivery attempts, oldest first: event, attempt, HTTP status, latency, error.", webhooks.DeliveryHistory)
	webhooksRunE(cmd, f, func(ctx context.Context, e env, hooks *webhooks.Store, pos []string) error {
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
				rows[i] = []string{f.style().at(d.At), strconv.FormatUint(d.Sequence, 10), d.Type, d.App, d.EventID, attempt, status, fmt.Sprintf("%dms", d.LatencyMS), cmp.Or(d.Error, "-")}
			}
			table(w, "WHEN\tSEQ\tTYPE\tAPP\tEVENT ID\tATTEMPT\tSTATUS\tLATENCY\tERROR", rows)
		})
	})
	return cmd
}

func webhooksRedeliverCommand() *cobra.Command {
	cmd, f := webhookCommand("redeliver ID SEQ", "Deliver one event to a webhook again",
		"revline webhooks redeliver 3f2a9c0d81be 42", 2)
	cmd.Long = "Deliver one event to a webhook again (one attempt, with the event's id: receivers that deduplicate ignore it). SEQ is the SEQ of `revline audit` or `webhooks deliveries`."
	webhooksRunE(cmd, f, func(ctx context.Context, e env, hooks *webhooks.Store, pos []string) error {
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
	return cmd
}
