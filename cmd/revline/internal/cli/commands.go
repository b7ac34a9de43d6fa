package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/cmd/revline/internal/server"
	"github.com/revline/revline/events"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/audit"
	"github.com/revline/revline/projections/queryapi"
)

func serveCommand() command {
	c := command{
		name:    "serve",
		summary: "Run the control plane: embedded NATS (unless --nats-url), command processor, projections, runner workers, the request gateway and the HTTP API.",
		example: "revline serve --data-dir ./revline-data",
	}
	c.run = func(e env, args []string) error {
		fs := c.flagSet()
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
		fs.StringVar(&cfg.RunnerUser, "runner-user", os.Getenv("REVLINE_RUNNER_USER"), "when serve runs as root, the user runners run as: a name, uid or uid:gid (default revline-runner if it exists, else nobody) (env REVLINE_RUNNER_USER)")
		fs.BoolVar(&cfg.AllowRootRunners, "allow-root-runners", false, "when serve runs as root, let runners run as root too (not recommended: runners run users' code)")
		fs.BoolVar(&cfg.NoRunners, "no-runners", false, "run no runner worker here: for extra replicas on a cluster, next to one that runs the runners")
		fs.BoolVar(&cfg.NATSIdentities, "nats-identities", false, "with --nats-url: connect with the identities in DATA_DIR/auth, which `revline nats-config` gave the cluster (the server's, and the query service's that may publish only to inboxes)")
		fs.BoolVar(&cfg.WebhooksAllowPrivate, "webhooks-allow-private", false, "let webhooks target loopback, link-local and private addresses (refused by default: a webhook could otherwise reach services inside this network)")
		fs.IntVar(&cfg.WebhookMaxFailures, "webhooks-max-failures", 10, "failed delivery attempts in a row that disable a webhook")
		logLevel := fs.String("log-level", envOr("REVLINE_LOG_LEVEL", "info"), "debug, info, warn or error (env REVLINE_LOG_LEVEL)")
		if pos, err := parse(e, fs, args); err != nil {
			return err
		} else if len(pos) > 0 {
			return usagef("serve takes no arguments, got %q", strings.Join(pos, " "))
		}
		if cfg.NATSURL == "" {
			// The variables may be exported for the client commands; only
			// flags given to serve itself are a mistake here.
			explicit := false
			fs.Visit(func(f *flag.Flag) {
				explicit = explicit || strings.HasPrefix(f.Name, "nats-creds") || strings.HasPrefix(f.Name, "nats-nkey") || strings.HasPrefix(f.Name, "nats-tls")
			})
			if explicit {
				return usagef("--nats-creds, --nats-nkey and --nats-tls-* need --nats-url: the embedded server makes its own identities in DATA_DIR/auth")
			}
		} else {
			opts, err := natsOpts.options(cfg.NATSURL)
			if err != nil {
				return err
			}
			cfg.NATSOptions = opts
		}
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
	return c
}

func natsConfigCommand() command {
	c := command{
		name:    "nats-config",
		summary: "Print the authorization block that gives a NATS server or cluster of your own Revline's users and permissions (the identities in DATA_DIR/auth, made if missing); then run serve with --nats-url and --nats-identities, and give clients DATA_DIR/auth/client.nk.",
		example: "revline nats-config --data-dir ./revline-data > revline-auth.conf   # include it in every node's nats-server.conf",
	}
	c.run = func(e env, args []string) error {
		fs := c.flagSet()
		dataDir := fs.String("data-dir", envOr("REVLINE_DATA_DIR", "./revline-data"), "data directory whose auth/ holds the identities (env REVLINE_DATA_DIR)")
		if pos, err := parse(e, fs, args); err != nil {
			return err
		} else if len(pos) > 0 {
			return usagef("nats-config takes no arguments, got %q", strings.Join(pos, " "))
		}
		conf, err := server.NATSAuthorization(*dataDir)
		if err != nil {
			return err
		}
		_, err = io.WriteString(e.stdout, conf)
		return err
	}
	return c
}

func deployCommand() command {
	c := command{
		name:    "deploy",
		summary: "Deploy a new revision of an app; waits until it is deployed or failed and prints its id.",
		usage:   "APP",
		example: "revline deploy my-model --command 'python3 -m http.server $PORT --bind 127.0.0.1' --message 'first version'",
	}
	c.run = func(e env, args []string) error {
		var (
			d             events.Deploy
			code          codeFlags
			runtime       runtimeFlags
			strategy, key string
			noWait        bool
			annotations   = annotationsFlag{}
		)
		extra := func(fs *flag.FlagSet) {
			fs.StringVar(&d.Command, "command", "", "shell command that starts a runner listening on $PORT (required)")
			code.register(fs)
			runtime.register(fs)
			fs.BoolVar(&d.ResetScale, "reset-scale", false, "take the runtime parameters from this deploy instead of keeping the app's current ones")
			fs.StringVar(&strategy, "strategy", "rolling", "rolling (new runners up before old ones stop) or recreate")
			fs.StringVar(&d.Message, "message", "", "why this revision exists, shown in list-rev and the audit log")
			fs.Var(annotations, "annotation", "KEY=VALUE annotation (repeatable)")
			fs.StringVar(&key, "idempotency-key", "", "a retried deploy with the same key creates no second revision; the retry must be the same deploy (command, message, parameters): another one with the key is refused")
			fs.BoolVar(&noWait, "no-wait", false, "return once the revision is created, without waiting for its runner")
		}
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
		return withClient(e, c, args, 1, extra, validate, func(ctx context.Context, s *session, f *clientFlags, pos []string) error {
			d.Code, d.Runtime = code.overrides(), runtime.overrides()
			if len(annotations) > 0 {
				d.Annotations = annotations
			}
			res, err := s.control.Deploy(ctx, pos[0], d, control.DeployOptions{IdempotencyKey: key, Wait: !noWait})
			if res.RevisionID == "" {
				return err
			}
			if f.output == outputJSON {
				if perr := printJSON(e.stdout, res); perr != nil {
					return perr
				}
			} else {
				printDeploy(e.stdout, pos[0], res)
			}
			return err
		})
	}
	return c
}

func appsList(e env, args []string) error {
	c, _, _ := findCommand([]string{"apps", "list"})
	var limit limitFlag
	return withClient(e, c, args, 0, limit.register, nil, func(ctx context.Context, s *session, f *clientFlags, _ []string) error {
		apps, err := queryapi.All(ctx, limit.n, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.AppView], error) {
			return s.reader.Apps(ctx, p, 0)
		})
		return render(e, f, apps, err, printApps)
	})
}

func listRevisions(e env, args []string) error {
	c, _, _ := findCommand([]string{"apps", "list-rev"})
	var (
		limit limitFlag
		at    pointFlags
	)
	extra := func(fs *flag.FlagSet) {
		limit.register(fs)
		at.register(fs)
	}
	return withClient(e, c, args, 1, extra, at.parse, func(ctx context.Context, s *session, f *clientFlags, pos []string) error {
		if at.set() {
			// Time travel: folded from the event log up to that point.
			then, err := audit.RevisionsAt(ctx, s.events, pos[0], at.point)
			if err != nil {
				return err
			}
			revs := then.Revisions
			if limit.n > 0 && len(revs) > limit.n {
				revs = revs[:limit.n]
			}
			return render(e, f, revs, nil, func(w io.Writer, revs []projections.RevisionView) {
				fmt.Fprintf(w, "Revisions of %s as of event %d (%s):\n", pos[0], then.Sequence, when(then.Time))
				printRevisions(w, revs)
			})
		}
		revs, err := queryapi.All(ctx, limit.n, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.RevisionView], error) {
			return s.reader.Revisions(ctx, pos[0], p, 0)
		})
		return render(e, f, revs, err, printRevisions)
	})
}

func setRevCommand() command {
	c := command{
		name:    "apps set-rev",
		summary: "Make a revision current (roll back or forward). Runtime parameters are kept; code parameters come from the revision.",
		usage:   "APP REVISION",
		example: "revline apps set-rev my-model v3",
	}
	c.run = func(e env, args []string) error {
		var strategy, message string
		var wait bool
		extra := func(fs *flag.FlagSet) {
			fs.StringVar(&strategy, "strategy", "rolling", "rolling (new runners up before old ones stop) or recreate")
			fs.StringVar(&message, "message", "", "why, recorded in the audit log")
			fs.BoolVar(&wait, "wait", false, "wait until the runners have moved: the revision's are ready and the others gone")
		}
		var st events.Strategy
		validate := func() (err error) {
			if st, err = events.ParseStrategy(strategy); err != nil {
				return usageError{err.Error()}
			}
			return nil
		}
		return withClient(e, c, args, 2, extra, validate, func(ctx context.Context, s *session, f *clientFlags, pos []string) error {
			res, err := s.control.SetRevision(ctx, pos[0], pos[1], st, message)
			if err == nil && wait {
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
	}
	return c
}

func rolloutCommand() command {
	c := command{
		name:    "apps rollout",
		summary: "Restart every runner on the same revision. Graceful by default: replacements start first, old runners finish their requests.",
		usage:   "APP",
		example: "revline apps rollout my-model --force",
	}
	c.run = func(e env, args []string) error {
		var force, noWait bool
		extra := func(fs *flag.FlagSet) {
			fs.BoolVar(&force, "force", false, "kill runners at once, dropping in-flight requests")
			fs.BoolVar(&noWait, "no-wait", false, "return once the rollout is requested")
		}
		return withClient(e, c, args, 1, extra, nil, func(ctx context.Context, s *session, f *clientFlags, pos []string) error {
			res, err := s.control.Rollout(ctx, pos[0], force, !noWait)
			return render(e, f, res, err, func(w io.Writer, res control.RolloutResult) { printRollout(w, pos[0], res) })
		})
	}
	return c
}

func deleteRevision(e env, args []string) error {
	c, _, _ := findCommand([]string{"apps", "delete-rev"})
	return withClient(e, c, args, 2, nil, nil, func(ctx context.Context, s *session, f *clientFlags, pos []string) error {
		res, err := s.control.DeleteRevision(ctx, pos[0], pos[1])
		return render(e, f, res, err, func(w io.Writer, res control.DeleteResult) {
			fmt.Fprintf(w, "Deleted revision %s of %s.\n", revisionName(res.Number, res.RevisionID), res.App)
		})
	})
}

func scaleCommand() command {
	c := command{
		name:    "apps scale",
		summary: "Change an app's runtime-tunable parameters.",
		usage:   "APP",
		example: "revline apps scale my-model --min-concurrency 2 --keep-alive 5m",
	}
	c.run = func(e env, args []string) error {
		var runtime runtimeFlags
		var code codeFlags
		extra := func(fs *flag.FlagSet) {
			runtime.register(fs)
			code.register(fs)
		}
		// Nothing to change is a mistake in the call, told before connecting.
		validate := func() error {
			if runtime.overrides().IsZero() && code.overrides().IsZero() {
				return usagef("give at least one parameter to change, such as --min-concurrency or --keep-alive")
			}
			return nil
		}
		return withClient(e, c, args, 1, extra, validate, func(ctx context.Context, s *session, f *clientFlags, pos []string) error {
			if changed := code.overrides(); !changed.IsZero() {
				fmt.Fprintln(e.stderr, "Warning: --machine-type, --max-multiplexing and --startup-timeout are code parameters of the current revision: they will be reset on the next deployment or set-rev.")
			}
			res, err := s.control.Scale(ctx, pos[0], events.Scale{Runtime: runtime.overrides(), Code: code.overrides()})
			if err != nil {
				return err
			}
			return printChange(ctx, e, s, f, res, "Scaled")
		})
	}
	return c
}

func runnersCommand() command {
	c := command{
		name:    "apps runners",
		summary: "List an app's runners; --at shows them as they were then.",
		usage:   "APP",
		example: "revline apps runners my-model --state all --at '10m ago'",
	}
	c.run = func(e env, args []string) error {
		var (
			state string
			limit limitFlag
			at    pointFlags
		)
		extra := func(fs *flag.FlagSet) {
			fs.StringVar(&state, "state", "", "all, or one state: pending, setup, idle, running, draining, terminating, terminated, crash_backoff (default: all but terminated)")
			limit.register(fs)
			at.register(fs)
		}
		var filter queryapi.RunnerFilter
		validate := func() (err error) {
			if filter, err = queryapi.ParseRunnerFilter(state); err != nil {
				return usageError{err.Error()}
			}
			return at.parse()
		}
		return withClient(e, c, args, 1, extra, validate, func(ctx context.Context, s *session, f *clientFlags, pos []string) error {
			if at.set() {
				// Time travel: folded from the runners' reports in the log.
				then, err := audit.RunnersAt(ctx, s.events, pos[0], at.point)
				if err != nil {
					return err
				}
				runners := slices.DeleteFunc(then.Runners, func(r projections.RunnerView) bool { return !filter.Keeps(r) })
				if limit.n > 0 && len(runners) > limit.n {
					runners = runners[:limit.n]
				}
				return render(e, f, runners, nil, func(w io.Writer, runners []projections.RunnerView) {
					fmt.Fprintf(w, "Runners of %s as of event %d (%s):\n", pos[0], then.Sequence, when(then.Time))
					printRunners(w, runners)
				})
			}
			runners, err := queryapi.All(ctx, limit.n, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.RunnerView], error) {
				return s.reader.Runners(ctx, pos[0], filter, p, 0)
			})
			return render(e, f, runners, err, printRunners)
		})
	}
	return c
}

func suspend(e env, args []string) error { return changeState(e, args, "apps suspend") }

func resume(e env, args []string) error { return changeState(e, args, "apps resume") }

func changeState(e env, args []string, name string) error {
	c, _, _ := findCommand(strings.Fields(name))
	return withClient(e, c, args, 1, nil, nil, func(ctx context.Context, s *session, f *clientFlags, pos []string) error {
		op, verb := s.control.Suspend, "Suspended"
		if name == "apps resume" {
			op, verb = s.control.Resume, "Resumed"
		}
		res, err := op(ctx, pos[0])
		if err != nil {
			return err
		}
		return printChange(ctx, e, s, f, res, verb)
	})
}
