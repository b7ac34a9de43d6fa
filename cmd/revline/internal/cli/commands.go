package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/audit"
	"github.com/revline/revline/projections/queryapi"
	"github.com/revline/revline/workers/process"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func serveCommand() *cobra.Command {
	cmd := newCommand("serve", "Run the control plane",
		"revline serve --data-dir ./revline-data", 0, 0)
	cmd.Long = "Run the control plane: embedded NATS (unless --nats-url), command processor, projections, runner workers, the request gateway and the HTTP API."
	fs := cmd.Flags()
	cfg := server.Config{Version: Version}
	fs.StringVar(&cfg.DataDir, "data-dir", envOr("REVLINE_DATA_DIR", "./revline-data"), "data directory (env REVLINE_DATA_DIR)")
	fs.StringVar(&cfg.NATSListen, "nats-listen", envOr("REVLINE_NATS_LISTEN", "127.0.0.1:4222"), "address of the embedded NATS server (env REVLINE_NATS_LISTEN)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", envOr("REVLINE_HTTP_ADDR", "127.0.0.1:8080"), "address of the HTTP API (env REVLINE_HTTP_ADDR)")
	fs.StringVar(&cfg.GatewayAddr, "gateway-addr", envOr("REVLINE_GATEWAY_ADDR", "127.0.0.1:8081"), "address of the request gateway: requests to /apps/APP/... go to the app's runners (env REVLINE_GATEWAY_ADDR)")
	allowedHosts := fs.String("http-allowed-hosts", os.Getenv("REVLINE_HTTP_ALLOWED_HOSTS"), "comma-separated host names the HTTP API answers to besides localhost and IP addresses (env REVLINE_HTTP_ALLOWED_HOSTS)")
	fs.StringVar(&cfg.NATSURL, "nats-url", os.Getenv("REVLINE_SERVE_NATS_URL"), "use this NATS server or cluster instead of the embedded one (env REVLINE_SERVE_NATS_URL)")
	var natsOpts natsFlags
	natsOpts.register(fs)
	fs.IntVar(&cfg.Replicas, "replicas", 1, "stream replicas (3 on a cluster)")
	fs.DurationVar(&cfg.ShutdownGrace, "shutdown-grace", 10*time.Second, "how long runners get to stop on shutdown")
	fs.StringVar(&cfg.RunnerUser, "runner-user", os.Getenv("REVLINE_RUNNER_USER"), "when serve runs as root, one user every runner runs as: a name, uid or uid:gid; runners then share it and can read each other's environment, secrets included (default: a uid of each runner's own, see --runner-uid-range) (env REVLINE_RUNNER_USER)")
	uidRange := fs.String("runner-uid-range", os.Getenv("REVLINE_RUNNER_UID_RANGE"), "when serve runs as root without --runner-user, the uids FIRST-LAST that runners get one each of, with the group of the same number (default "+process.DefaultRunnerUIDs.String()+") (env REVLINE_RUNNER_UID_RANGE)")
	fs.BoolVar(&cfg.AllowRootRunners, "allow-root-runners", false, "when serve runs as root, let runners run as root too (not recommended: runners run users' code)")
	logMiB := fs.Int("runner-log-max-mib", process.DefaultLogMaxBytes>>20, "size in MiB at which a runner's log is rotated: the previous file is kept (RUNNER.log.1), so a runner's output takes at most twice this on disk")
	fs.IntVar(&cfg.RunnerEndedLogs, "runner-logs-kept", process.DefaultEndedLogs, "how many of an app's stopped runners keep their logs (the latest); the logs of an app's runners go when the app is deleted")
	fs.BoolVar(&cfg.NoRunners, "no-runners", false, "run no runner worker here: for extra replicas on a cluster, next to one that runs the runners")
	fs.BoolVar(&cfg.NATSIdentities, "nats-identities", false, "with --nats-url: connect with the identities in DATA_DIR/auth, which `revline nats-config` gave the cluster (the server's, and the query service's that may publish only to inboxes)")
	fs.BoolVar(&cfg.WebhooksAllowPrivate, "webhooks-allow-private", false, "let webhooks target loopback, link-local and private addresses (refused by default: a webhook could otherwise reach services inside this network)")
	fs.IntVar(&cfg.WebhookMaxFailures, "webhooks-max-failures", 10, "failed delivery attempts in a row that disable a webhook")
	logLevel := fs.String("log-level", envOr("REVLINE_LOG_LEVEL", "info"), "debug, info, warn or error (env REVLINE_LOG_LEVEL)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		e := envOf(cmd)
		if cfg.NATSURL == "" {
			// The variables may be exported for the client commands; only
			// flags given to serve itself are a mistake here.
			explicit := false
			fs.Visit(func(f *pflag.Flag) {
				explicit = explicit || strings.HasPrefix(f.Name, "nats-creds") || strings.HasPrefix(f.Name, "nats-nkey") || strings.HasPrefix(f.Name, "nats-tls")
			})
			if explicit {
				return usagef("--nats-creds, --nats-nkey and --nats-tls-* need --nats-url: the embedded server makes its own identities in DATA_DIR/auth")
			}
		} else {
			opts, _, err := natsOpts.options(nil)
			if err != nil {
				return err
			}
			cfg.NATSOptions = opts
		}
		if *uidRange != "" {
			r, err := process.ParseUIDRange(*uidRange)
			if err != nil {
				return usagef("--runner-uid-range: %v", err)
			}
			cfg.RunnerUIDs = r
		}
		if *logMiB < 1 || *logMiB > 1<<20 {
			return usagef("--runner-log-max-mib %d: want 1 to %d", *logMiB, 1<<20)
		}
		if cfg.RunnerEndedLogs < 1 {
			return usagef("--runner-logs-kept %d: want 1 or more", cfg.RunnerEndedLogs)
		}
		cfg.RunnerLogMaxBytes = int64(*logMiB) << 20
		if *allowedHosts != "" {
			cfg.HTTPAllowedHosts = strings.Split(*allowedHosts, ",")
		}
		var level slog.Level
		if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
			return usagef("--log-level %q: want debug, info, warn or error", *logLevel)
		}
		cfg.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
		ctx, stop := signal.NotifyContext(e.ctx, syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return server.Run(ctx, cfg)
	}
	return cmd
}

func natsConfigCommand() *cobra.Command {
	cmd := newCommand("nats-config", "Print the NATS authorization block",
		"revline nats-config --data-dir ./revline-data > revline-auth.conf   # include it in every node's nats-server.conf", 0, 0)
	cmd.Long = "Print the authorization block that gives a NATS server or cluster of your own Revline's users and permissions: the identities in DATA_DIR/auth (made if missing), and, with --nats-url, one user per live token, read from the cluster as the server. Then run serve with --nats-url and --nats-identities; clients connect as their tokens. Print it again and reload the nodes (nats-server --signal reload) after each token made or revoked: until then a new token cannot connect and a revoked one still can."
	dataDir := cmd.Flags().String("data-dir", envOr("REVLINE_DATA_DIR", "./revline-data"), "data directory whose auth/ holds the identities (env REVLINE_DATA_DIR)")
	natsURL := cmd.Flags().String("nats-url", os.Getenv("REVLINE_SERVE_NATS_URL"), "the cluster whose tokens become users, read with DATA_DIR/auth/server.nk; none: the server's identities alone (env REVLINE_SERVE_NATS_URL)")
	timeout := cmd.Flags().Duration("timeout", defaultWait, "how long to wait for the cluster")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, cancel := context.WithTimeout(envOf(cmd).ctx, *timeout)
		defer cancel()
		conf, err := server.NATSConfig(ctx, *dataDir, *natsURL)
		if err != nil {
			return err
		}
		_, err = io.WriteString(envOf(cmd).stdout, conf)
		return err
	}
	return cmd
}

func deployCommand() *cobra.Command {
	cmd, f := clientCommand("deploy APP", "Deploy a new revision of an app",
		"revline deploy my-model --command 'python3 -m http.server $PORT --bind 127.0.0.1' --message 'first version'", 1, 0)
	cmd.Long = "Deploy a new revision of an app; waits until it is deployed or failed and prints its id."
	var (
		d             events.Deploy
		code          codeFlags
		runtime       runtimeFlags
		strategy, key string
		noWait        bool
		annotations   = annotationsFlag{}
	)
	fs := cmd.Flags()
	fs.StringVar(&d.Command, "command", "", "shell command that starts a runner listening on $PORT (required)")
	code.register(fs)
	runtime.register(fs)
	fs.BoolVar(&d.ResetScale, "reset-scale", false, "take the runtime parameters from this deploy instead of keeping the app's current ones")
	fs.StringVar(&strategy, "strategy", "rolling", "rolling (new runners up before old ones stop) or recreate")
	fs.StringVar(&d.Message, "message", "", "why this revision exists, shown in list-rev and the audit log")
	fs.Var(annotations, "annotation", "KEY=VALUE annotation (repeatable)")
	fs.StringVar(&key, "idempotency-key", "", "a retried deploy with the same key creates no second revision; the retry must be the same deploy (command, message, parameters): another one with the key is refused")
	fs.BoolVar(&noWait, "no-wait", false, "return once the revision is created, without waiting for its runner")
	validate := func() error {
		if d.Command == "" {
			return usagef("--command is required: the shell command that starts a runner listening on $PORT")
		}
		st, err := events.ParseStrategy(strategy)
		if err != nil {
			return usageError{err.Error()}
		}
		d.Strategy = st
		return nil
	}
	f.runE(cmd, validate, func(ctx context.Context, e env, s *session, pos []string) error {
		d.Code, d.Runtime = code.overrides(), runtime.overrides()
		if len(annotations) > 0 {
			d.Annotations = annotations
		}
		res, err := s.control.Deploy(ctx, pos[0], d, control.DeployOptions{IdempotencyKey: key, Wait: !noWait})
		if res.RevisionID == "" {
			return err
		}
		if f.output == outputJSON {
			if perr := printJSON(e.stdout, deployOutcome{pos[0], res}); perr != nil {
				return perr
			}
			return err
		}
		printDeploy(e.stdout, pos[0], res)
		if errors.Is(err, control.ErrDeployFailed) || errors.Is(err, control.ErrDeployNotCurrent) {
			return errReported // the sentence says why, once
		}
		return err
	})
	return cmd
}

func appsListCommand() *cobra.Command {
	cmd, f := clientCommand("list", "List apps", "revline apps list -o json", 0, 0)
	var limit limitFlag
	limit.register(cmd.Flags())
	f.runE(cmd, nil, func(ctx context.Context, e env, s *session, _ []string) error {
		apps, err := queryapi.All(ctx, limit.n, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.AppView], error) {
			return s.reader.Apps(ctx, p, 0)
		})
		return render(e, f, apps, err, f.style().printApps)
	})
	return cmd
}

func listRevisionsCommand() *cobra.Command {
	cmd, f := clientCommand("list-rev APP", "List an app's revisions",
		"revline apps list-rev my-model --at '2h ago'", 1, 0)
	cmd.Long = "List an app's revisions, newest first; the current one is marked. --at shows them as they were then."
	var (
		limit limitFlag
		at    pointFlags
	)
	limit.register(cmd.Flags())
	at.register(cmd.Flags())
	f.runE(cmd, at.parse, func(ctx context.Context, e env, s *session, pos []string) error {
		if at.set() {
			// Time travel: folded from the event log up to that point.
			then, err := audit.RevisionsAt(ctx, s.history(ctx), pos[0], at.point)
			if err != nil {
				return err
			}
			revs := then.Revisions
			if limit.n > 0 && len(revs) > limit.n {
				revs = revs[:limit.n]
			}
			return render(e, f, revs, nil, func(w io.Writer, revs []projections.RevisionView) {
				fmt.Fprintf(w, "Revisions of %s as of event %d (%s):\n", pos[0], then.Sequence, when(then.Time))
				f.style().printRevisions(w, revs)
			})
		}
		revs, err := queryapi.All(ctx, limit.n, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.RevisionView], error) {
			return s.reader.Revisions(ctx, pos[0], p, 0)
		})
		return render(e, f, revs, err, f.style().printRevisions)
	})
	return cmd
}

func setRevCommand() *cobra.Command {
	cmd, f := clientCommand("set-rev APP REVISION", "Make a revision current (roll back or forward)",
		"revline apps set-rev my-model v3", 2, 0)
	cmd.Long = "Make a revision current (roll back or forward). Runtime parameters are kept; code parameters come from the revision.\n" +
		"Waits until the revision's runners are ready and no other revision's is left (--no-wait)."
	var strategy, message string
	fs := cmd.Flags()
	fs.StringVar(&strategy, "strategy", "rolling", "rolling (new runners up before old ones stop) or recreate")
	fs.StringVar(&message, "message", "", "why, recorded in the audit log")
	wait := waitFlags(cmd, "return once the revision is current, without waiting for the runners to move (the revision's ready, the others gone)")
	var st events.Strategy
	validate := func() (err error) {
		if st, err = events.ParseStrategy(strategy); err != nil {
			return usageError{err.Error()}
		}
		return nil
	}
	f.runE(cmd, validate, func(ctx context.Context, e env, s *session, pos []string) error {
		res, err := s.control.SetRevision(ctx, pos[0], pos[1], st, message)
		if err == nil && res.Status == events.OutcomeAccepted && wait() {
			var ready int
			ready, err = s.control.AwaitSwitch(ctx, pos[0], res.RevisionID, res.Sequence)
			res.ReadyRunners = &ready
		}
		return render(e, f, res, err, func(w io.Writer, res control.SwitchResult) {
			if res.Status == events.OutcomeNoOp {
				fmt.Fprintf(w, "Nothing to do: %s\n", res.Message)
			} else {
				fmt.Fprintf(w, "App %s now serves revision %s (strategy %s).\n", res.App, revisionName(res.Number, res.RevisionID), st)
			}
			if res.ReadyRunners != nil {
				fmt.Fprintf(w, "Runners moved: %d of %s ready, none of another revision left.\n", *res.ReadyRunners, revisionName(res.Number, res.RevisionID))
			}
		})
	})
	return cmd
}

func rolloutCommand() *cobra.Command {
	cmd, f := clientCommand("rollout APP", "Restart every runner of an app",
		"revline apps rollout my-model --force", 1, 0)
	cmd.Long = "Restart every runner on the same revision. Graceful by default: replacements start first, old runners finish their requests.\n" +
		"Waits until the rollout completes (--no-wait); exit 1 if it fails (its replacements keep failing to start; a graceful rollout then leaves the runners it did not replace serving) or a newer rollout supersedes it."
	var force bool
	cmd.Flags().BoolVar(&force, "force", false, "kill runners at once, dropping in-flight requests")
	wait := waitFlags(cmd, "return once the rollout is requested, without waiting for it to complete")
	f.runE(cmd, nil, func(ctx context.Context, e env, s *session, pos []string) error {
		res, err := s.control.Rollout(ctx, pos[0], force, wait())
		if err != nil {
			return err
		}
		return printRolloutEnd(e, f, pos[0], res)
	})
	return cmd
}

func rolloutStatusCommand() *cobra.Command {
	cmd, f := clientCommand("rollout-status APP [ROLLOUT]", "Show a rollout, or follow it to its end",
		"revline apps rollout-status my-model --watch", 1, 1)
	cmd.Long = "Show a rollout, the app's last one unless ROLLOUT (its id) is given: requested (in progress), completed, failed (exit 1) or superseded by a newer rollout (exit 1). " +
		"--watch follows it, wherever it was started, to its end: exit 0 once it completes, 1 if it fails, a newer rollout supersedes it or --timeout passes."
	var watch bool
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow the rollout until it completes, fails or is superseded (at most --timeout)")
	cmd.Args = cobra.MatchAll(cmd.Args, func(_ *cobra.Command, pos []string) error {
		if len(pos) == 2 {
			if _, err := uuid.Parse(pos[1]); err != nil || len(pos[1]) != 36 {
				return usagef("rollout id %.80q: want the full id (a UUID) that `revline apps rollout` or `revline audit` shows", pos[1])
			}
		}
		return nil
	})
	f.runE(cmd, nil, func(ctx context.Context, e env, s *session, pos []string) error {
		app := pos[0]
		// The view shows the rollout as of the app's last event at least,
		// and --watch follows the events after it: no end is missed.
		var id string
		var end uint64
		var err error
		if len(pos) == 2 {
			id = pos[1]
			end, err = s.events.LastAppSequence(ctx, app)
		} else {
			end, err = audit.Each(ctx, s.events, audit.Filter{App: app, Types: []string{events.TypeRolloutRequested}}, 0, func(entry audit.Entry) error {
				if ro, ok := entry.Payload.(events.RolloutRequested); ok {
					id = ro.RolloutID
				}
				return nil
			})
			if err == nil && id == "" {
				err = fmt.Errorf("app %q has no rollout", app)
			}
		}
		if err != nil {
			return err
		}
		view, err := s.reader.Rollout(ctx, app, id, end)
		if err != nil {
			return err
		}
		res := control.RolloutResult{RolloutID: view.RolloutID, Force: view.Force, Status: "requested", Replaced: view.Replaced, DroppedRequests: view.DroppedRequests, Sequence: end}
		switch view.Status {
		case projections.RolloutCompleted:
			res.Status = "completed"
		case projections.RolloutFailed:
			res.Status, res.Reason = "failed", view.Reason
		case projections.RolloutSuperseded:
			res.Status = "superseded"
		default:
			if watch {
				if res, err = s.control.AwaitRollout(ctx, app, res); err != nil {
					return err
				}
			}
		}
		return printRolloutEnd(e, f, app, res)
	})
	return cmd
}

func deleteRevisionCommand() *cobra.Command {
	cmd, f := clientCommand("delete-rev APP REVISION", "Delete a revision",
		"revline apps delete-rev my-model v2", 2, 0)
	cmd.Long = "Delete a revision (not the current one). It leaves the list, never the audit log."
	f.runE(cmd, nil, func(ctx context.Context, e env, s *session, pos []string) error {
		res, err := s.control.DeleteRevision(ctx, pos[0], pos[1])
		return render(e, f, deleteOutcome{res, events.OutcomeAccepted}, err, func(w io.Writer, res deleteOutcome) {
			fmt.Fprintf(w, "Deleted revision %s of %s.\n", revisionName(res.Number, res.RevisionID), res.App)
		})
	})
	return cmd
}

func deleteAppCommand() *cobra.Command {
	cmd, f := clientCommand("delete APP", "Delete an app",
		"revline apps delete my-modle --reason \"typo of my-model\"", 1, 0)
	cmd.Long = "Delete an app, without asking (as fal apps delete and kubectl delete do): its runners stop at once,\n" +
		"each cut at its request_timeout, and the gateway answers 404 for it. It leaves apps list, and its\n" +
		"secrets are forgotten (their values purged). Its history stays: revline apps history APP and\n" +
		"revline audit APP show it. Every command on it but deploy is then refused (app_deleted); a deploy\n" +
		"starts it again, its revision numbers going on. Refused while a deploy or a rollout is in progress.\n" +
		"Needs the deployer role."
	var reason string
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded in the audit log")
	f.runE(cmd, nil, func(ctx context.Context, e env, s *session, pos []string) error {
		res, err := s.control.DeleteApp(ctx, pos[0], reason)
		return render(e, f, res, err, func(w io.Writer, res control.DeleteAppResult) {
			if res.Status == events.OutcomeNoOp {
				fmt.Fprintf(w, "Nothing to do: %s\n", res.Message)
				return
			}
			fmt.Fprintf(w, "Deleted app %s: its runners are stopping.\n", res.App)
			if len(res.PurgedSecrets) > 0 {
				fmt.Fprintf(w, "Secrets purged: %s.\n", strings.Join(res.PurgedSecrets, ", "))
			}
			fmt.Fprintf(w, "Its history stays: revline apps history %s. A deploy starts it again.\n", res.App)
		})
	})
	return cmd
}

func scaleCommand() *cobra.Command {
	cmd, f := clientCommand("scale APP", "Change an app's runtime parameters",
		"revline apps scale my-model --min-concurrency 2 --keep-alive 5m", 1, 0)
	cmd.Long = "Change an app's runtime-tunable parameters. Waits until its runners have settled: none starting or stopping,\n" +
		"at least min_concurrency ready (--no-wait)."
	var runtime runtimeFlags
	var code codeFlags
	runtime.register(cmd.Flags())
	code.register(cmd.Flags())
	wait := settleFlags(cmd)
	// Nothing to change is a mistake in the call, told before connecting.
	validate := func() error {
		if runtime.overrides().IsZero() && code.overrides().IsZero() {
			return usagef("give at least one parameter to change, such as --min-concurrency or --keep-alive")
		}
		return nil
	}
	f.runE(cmd, validate, func(ctx context.Context, e env, s *session, pos []string) error {
		if given := code.given(); len(given) > 0 {
			what := "are code parameters"
			if len(given) == 1 {
				what = "is a code parameter"
			}
			fmt.Fprintf(e.stderr, "Warning: %s %s of the current revision: reset on the next deployment or set-rev.\n", strings.Join(given, ", "), what)
		}
		res, err := s.control.Scale(ctx, pos[0], events.Scale{Runtime: runtime.overrides(), Code: code.overrides()})
		if err != nil {
			return err
		}
		return printChange(ctx, e, s, f, res, "Scaled", wait())
	})
	return cmd
}

func runnersCommand() *cobra.Command {
	cmd, f := clientCommand("runners APP", "List an app's runners",
		"revline apps runners my-model --state all --at '10m ago'", 1, 0)
	cmd.Long = "List an app's runners; --at shows them as they were then."
	var (
		state string
		limit limitFlag
		at    pointFlags
	)
	cmd.Flags().StringVar(&state, "state", "", "all, or one state: pending, setup, idle, running, draining, terminating, terminated, crash_backoff (default: all but terminated)")
	limit.register(cmd.Flags())
	at.register(cmd.Flags())
	var filter queryapi.RunnerFilter
	validate := func() (err error) {
		if filter, err = queryapi.ParseRunnerFilter(state); err != nil {
			return usageError{err.Error()}
		}
		return at.parse()
	}
	f.runE(cmd, validate, func(ctx context.Context, e env, s *session, pos []string) error {
		if at.set() {
			// Time travel: folded from the runners' reports in the log.
			then, err := audit.RunnersAt(ctx, s.history(ctx), pos[0], at.point)
			if err != nil {
				return err
			}
			runners := slices.DeleteFunc(then.Runners, func(r projections.RunnerView) bool { return !filter.Keeps(r) })
			if limit.n > 0 && len(runners) > limit.n {
				runners = runners[:limit.n]
			}
			return render(e, f, runners, nil, func(w io.Writer, runners []projections.RunnerView) {
				f.style().printRunnersThen(w, then, at.point, runners)
			})
		}
		runners, err := queryapi.All(ctx, limit.n, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.RunnerView], error) {
			return s.reader.Runners(ctx, pos[0], filter, p, 0)
		})
		return render(e, f, runners, err, f.style().printRunners)
	})
	return cmd
}

// changeStateCommand is `apps suspend` or `apps resume`.
func changeStateCommand(name string) *cobra.Command {
	short, long, example := "Stop an app's runners", "Stop an app's runners until it is resumed; its current revision shows as suspended. Waits until none is left (--no-wait).", "revline apps suspend my-model"
	if name == "resume" {
		short, long, example = "Bring a suspended app back", "Bring a suspended app back. Waits until min_concurrency of its runners are ready (--no-wait).", "revline apps resume my-model"
	}
	cmd, f := clientCommand(name+" APP", short, example, 1, 0)
	cmd.Long = long
	wait := settleFlags(cmd)
	f.runE(cmd, nil, func(ctx context.Context, e env, s *session, pos []string) error {
		op, verb := s.control.Suspend, "Suspended"
		if name == "resume" {
			op, verb = s.control.Resume, "Resumed"
		}
		res, err := op(ctx, pos[0])
		if err != nil {
			return err
		}
		return printChange(ctx, e, s, f, res, verb, wait())
	})
	return cmd
}
