// Package cli is the `revline` command line: `serve`, which runs the
// control plane, and the client commands modelled on fal's (`deploy`,
// `apps list`, `apps list-rev`, `apps set-rev`, `apps rollout`,
// `apps delete-rev`, `apps scale`, `apps runners`, `runners logs`, ...),
// which talk to a server over NATS.
package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/events/secrets"
	"github.com/revline/revline/projections"
	"github.com/revline/revline/projections/queryapi"
	"github.com/revline/revline/workers/webhooks"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes.
const (
	ExitOK       = 0
	ExitFailed   = 1 // rejected, failed, or the server could not be reached
	ExitUsage    = 2
	defaultNATS  = "nats://127.0.0.1:4222"
	envNATSURL   = "REVLINE_NATS_URL"
	envActor     = "REVLINE_ACTOR"
	outputTable  = "table"
	outputWide   = "wide"
	outputJSON   = "json"
	outputJSONL  = "jsonl"
	defaultWait  = 10 * time.Minute
	connectLimit = 5 * time.Second
)

// Version is the build's version (SemVer), set by the linker.
var Version = "0.1.0-dev"

// env is what a command runs with: its streams and the process context.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// envOf is the env of a running command.
func envOf(cmd *cobra.Command) env {
	return env{ctx: cmd.Context(), stdin: cmd.InOrStdin(), stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr()}
}

// usageError marks a mistake in how the command was called (exit 2).
type usageError struct{ msg string }

// Error implements the error interface.
func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// errReported is a failure the command has reported on stdout already,
// as its result: exit 1 without an error line.
var errReported = errors.New("failure reported on stdout")

// unknownCommandError is a usage error (exit 2) whose message already says
// where to look: an unknown command, or a group without its command.
type unknownCommandError struct{ msg string }

// Error implements the error interface.
func (e unknownCommandError) Error() string { return e.msg }

// newRoot builds the command tree, writing to stdout and stderr, and
// returns it with the connection its persistent flags fill in.
func newRoot(stdout, stderr io.Writer) (*cobra.Command, *connection) {
	root := &cobra.Command{
		Use:     "revline",
		Short:   "Revisions and rollouts for serverless apps",
		Long:    "revline: revisions and rollouts for serverless apps, event-sourced on NATS JetStream.",
		Example: "  revline serve --data-dir ./revline-data\n  revline deploy my-model --command 'python3 -m http.server $PORT --bind 127.0.0.1'",
		Version: Version,
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return unknownCommand(cmd, args)
		},
		SilenceErrors: true,
		SilenceUsage:  true,
		Annotations:   map[string]string{groupAnnotation: "true"},
	}
	conn := &connection{}
	conn.register(root.PersistentFlags())
	root.PersistentPreRunE = refuseGlobalFlags
	root.SetUsageTemplate(usageTemplate(root.PersistentFlags()))
	// Before the completion command is added: it takes its output then.
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate(currentBuild().line() + "\n")
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(
		serveCommand(),
		natsConfigCommand(),
		deployCommand(),
		group("apps", "Manage apps and their revisions",
			appsListCommand(), listRevisionsCommand(), setRevCommand(), rolloutCommand(), rolloutStatusCommand(), deleteRevisionCommand(),
			scaleCommand(), runnersCommand(), changeStateCommand("suspend"), changeStateCommand("resume"),
			deleteAppCommand(), historyCommand(), showCommand(), blameCommand(), diffCommand()),
		group("runners", "Stop, kill or read one runner",
			runnerStopCommand(false), runnerStopCommand(true), runnerLogsCommand()),
		auditCommand(),
		group("secrets", "Manage apps' secrets",
			secretsSetCommand(), secretsListCommand(), secretsUnsetCommand()),
		group("webhooks", "Send events to URLs",
			webhooksAddCommand(), webhooksListCommand(), webhooksHistoryCommand(), webhooksRemoveCommand(),
			webhooksStatusCommand(webhooks.StatusActive), webhooksStatusCommand(webhooks.StatusDisabled),
			webhooksDeliveriesCommand(), webhooksRedeliverCommand()),
		group("tokens", "Manage the HTTP API's bearer tokens",
			tokensCreateCommand(), tokensListCommand(), tokensRevokeCommand()),
		replayCommand(),
		benchCommand(),
		versionCommand(),
	)
	addBuiltinExamples(root)
	return root, conn
}

// Main runs the CLI with args (without the program name) and returns the
// exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root, conn := newRoot(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(context.WithValue(ctx, connectionKey{}, conn))
	var usage usageError
	var unknown unknownCommandError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, errReported):
		return ExitFailed
	case errors.As(err, &unknown):
		fmt.Fprintf(stderr, "Error: %s\n", oneLine(err))
		return ExitUsage
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "Error: %s; usage: %s (see `%s --help`)\n", oneLine(err), cmd.UseLine(), cmd.CommandPath())
		return ExitUsage
	default:
		msg := oneLine(err)
		var failing *control.RunnersFailingError
		if errors.As(err, &failing) {
			msg += fmt.Sprintf(" (its output: revline runners logs %s %s)", failing.App, failing.RunnerID)
		}
		fmt.Fprintf(stderr, "Error: %s\n", msg)
		return ExitFailed
	}
}

// refuseGlobalFlags refuses the root's connection flags on a command that
// does not talk to a server as a client (serve, nats-config, bench...),
// rather than ignore them.
func refuseGlobalFlags(cmd *cobra.Command, _ []string) error {
	if cmd.Annotations[clientAnnotation] != "" || cmd.HasSubCommands() {
		// A group (apps, tokens...) runs only to say its subcommand is
		// unknown: that is what to say.
		return nil
	}
	var given []string
	cmd.InheritedFlags().VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			given = append(given, "--"+f.Name)
		}
	})
	if len(given) > 0 {
		return usagef("%s: %s talks to no server as a client", strings.Join(given, ", "), cmd.CommandPath())
	}
	return nil
}

// flagError makes a flag that cobra could not parse a usage error; a long
// flag given with one dash, as Go's flag package took it (-nats-url), is
// told how to write it.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	if _, arg, ok := strings.Cut(msg, "unknown shorthand flag: "); ok {
		if _, given, ok := strings.Cut(arg, " in -"); ok {
			name, _, _ := strings.Cut(given, "=")
			if len(name) > 1 && cmd.Flags().Lookup(name) != nil {
				msg = fmt.Sprintf("unknown flag -%s: a long flag takes two dashes: --%s", given, name)
			}
		}
	}
	return usageError{msg}
}

// oneLine keeps an error message on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// newCommand returns a command: use is its name and its arguments
// ("set-rev APP REVISION"), which takes nargs of them, and up to optional
// more.
func newCommand(use, short, example string, nargs, optional int) *cobra.Command {
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Example: "  " + strings.ReplaceAll(example, "\n", "\n  "),
		Args: func(cmd *cobra.Command, pos []string) error {
			if len(pos) < nargs || len(pos) > nargs+optional {
				_, usage, _ := strings.Cut(cmd.Use, " ")
				if usage == "" {
					return usagef("%s takes no arguments, got %q", strings.TrimPrefix(cmd.CommandPath(), "revline "), strings.Join(pos, " "))
				}
				return usagef("want %s argument(s) (%s), got %d", argCount(nargs, optional), usage, len(pos))
			}
			return nil
		},
	}
}

// outputFlag registers -o/--output on cmd, whose formats are table, json
// and more (read when the shell completes the flag).
func outputFlag(cmd *cobra.Command, output *string, usage string, more func() []string) {
	cmd.Flags().StringVarP(output, "output", "o", outputTable, usage)
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return outputFormats(more), cobra.ShellCompDirectiveNoFileComp
	})
}

// outputFormats are table, json and those more returns.
func outputFormats(more func() []string) []string {
	formats := []string{outputTable, outputJSON}
	if more != nil {
		formats = append(formats, more()...)
	}
	return formats
}

// checkOutput checks an -o value against the formats of outputFlag.
func checkOutput(output string, more func() []string) error {
	if formats := outputFormats(more); !slices.Contains(formats, output) {
		return usagef("output format %q: want %s or %s", output, strings.Join(formats[:len(formats)-1], ", "), formats[len(formats)-1])
	}
	return nil
}

// connection is how the client commands reach a server and sign their
// commands: the root's persistent flags, given once for every command
// (Global Flags) before or after the command's name.
type connection struct {
	natsURL string
	nats    natsFlags
	// tokenFile holds the token the CLI signs with (signing.go).
	tokenFile string
}

// register registers the connection's flags on fs.
func (c *connection) register(fs *pflag.FlagSet) {
	c.natsURL = envOr(envNATSURL, defaultNATS)
	fs.StringVar(&c.natsURL, "nats-url", c.natsURL, "NATS server of the Revline server (env "+envNATSURL+")")
	c.nats.register(fs)
	c.nats.localIdentity = true
	fs.StringVar(&c.tokenFile, "token-file", os.Getenv(envTokenFile), "file holding the token that signs commands (env "+envTokenFile+", or the value in "+envToken+"); default DATA_DIR/auth/admin.token when NATS is on this machine; the token is also who the CLI is on NATS")
}

// connectionKey is the context key of the root's connection flags, which
// the client commands read them from when they run.
type connectionKey struct{}

// clientFlags are the flags every client command has, and the root's
// connection flags once it runs.
type clientFlags struct {
	*connection
	output  string
	actor   string
	timeout time.Duration
	// progress prints a long wait's steps: set for table output on a
	// terminal, nil otherwise (scripts and pipes get the result alone).
	progress func(line string)
	// colour colours the tables' status words: stdout is a terminal and
	// NO_COLOR is not set.
	colour bool
	// outputs are the command's output formats besides table and json.
	outputs []string
	// firstArg checks the first positional argument, an app's name unless
	// the command says otherwise (a token's name, a webhook's id).
	firstArg func(string) error
	// stop ends the running command with a cause (run sets it).
	stop context.CancelCauseFunc
}

// clientCommand returns a client command (as newCommand) with the flags
// every client command has.
func clientCommand(use, short, example string, nargs, optional int) (*cobra.Command, *clientFlags) {
	cmd := newCommand(use, short, example, nargs, optional)
	f := &clientFlags{firstArg: events.ValidateAppName}
	fs := cmd.Flags()
	cmd.Annotations = map[string]string{clientAnnotation: "true"}
	f.outputs = []string{outputWide}
	outputFlag(cmd, &f.output, "output format: table, wide (every column, whole texts, exact times) or json", func() []string { return f.outputs })
	fs.StringVar(&f.actor, "actor", envOr(envActor, defaultActor()), "who you are, sent with commands; the log records the token that signs them and webhook changes, token:NAME (env "+envActor+")")
	fs.DurationVar(&f.timeout, "timeout", defaultWait, "how long to wait for the server, and for a change to be live")
	if words := strings.Fields(use); len(words) > 1 && (words[1] == "APP" || words[1] == "[APP]") {
		cmd.ValidArgsFunction = f.completeApps
	}
	return cmd, f
}

// completeLimit bounds how long the shell waits for the apps to complete
// an APP with.
const completeLimit = 2 * time.Second

// completeApps completes an APP argument with the names of the server's
// apps, asked with the command's flags; nothing if the server does not
// answer within completeLimit.
func (f *clientFlags) completeApps(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completeLimit)
	defer cancel()
	var names []cobra.Completion
	_ = f.run(ctx, func(ctx context.Context, s *session) error {
		apps, err := queryapi.All(ctx, 0, func(ctx context.Context, p queryapi.PageRequest) (queryapi.Page[projections.AppView], error) {
			return s.reader.Apps(ctx, p, 0)
		})
		for _, a := range apps {
			if strings.HasPrefix(a.Name, toComplete) {
				names = append(names, a.Name)
			}
		}
		return err
	})
	return names, cobra.ShellCompDirectiveNoFileComp
}

// style is how the command's tables look.
func (f *clientFlags) style() tableStyle {
	return tableStyle{now: time.Now(), wide: f.output == outputWide, colour: f.colour}
}

// validate checks the flags.
func (f *clientFlags) validate() error {
	if err := checkOutput(f.output, func() []string { return f.outputs }); err != nil {
		return err
	}
	if f.timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	return nil
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

func defaultActor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if host, err := os.Hostname(); err == nil {
		name += "@" + host
	}
	return name
}

// session is a client connection to a Revline server.
type session struct {
	nc *nats.Conn
	// signer signs commands and token requests; nil without a token.
	signer  *events.Signer
	control *control.Control
	reader  queryapi.Reader
	logs    queryapi.LogReader
	// events reads the event log (audit).
	events *events.JetStreamStore
	js     jetstream.JetStream
}

func (f *clientFlags) connect(ctx context.Context) (*session, error) {
	signer, err := f.signer()
	if err != nil {
		return nil, err
	}
	opts, asToken, err := f.nats.options(signer)
	if err != nil {
		return nil, err
	}
	opts = append([]nats.Option{nats.Name("revline-cli"), nats.Timeout(connectLimit), f.onAsyncError(signer)}, opts...)
	nc, err := nats.Connect(f.natsURL, append(opts, asToken...)...)
	if errors.Is(err, nats.ErrNkeysNotSupported) && asToken != nil {
		// A NATS server that authenticates no one (one of your own,
		// without Revline's users) takes no identity: the token still
		// signs what it sends.
		nc, err = nats.Connect(f.natsURL, opts...)
	}
	if errors.Is(err, nats.ErrAuthorization) {
		return nil, f.refused(signer, err)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot reach NATS at %s (is `revline serve` running? set --nats-url or %s): %w", f.natsURL, envNATSURL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	store, err := events.OpenJetStreamStore(ctx, events.JetStreamStoreConfig{JetStream: js})
	if err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("NATS at %s has no Revline streams: start `revline serve` against it first", f.natsURL)
		}
		return nil, err
	}
	reader := queryapi.NewClient(nc, queryapi.SignedBy(signer))
	return &session{
		nc:     nc,
		signer: signer,
		reader: reader,
		logs:   reader,
		events: store,
		js:     js,
		control: &control.Control{
			Commands: commandbus.NewClient(js, commandbus.WithSigner(signer)),
			Signer:   signer,
			Reader:   reader,
			Events:   store,
			Secrets:  lazySecrets{js: js},
			Actor:    f.actor,
			Progress: f.progress,
		},
	}, nil
}

// onAsyncError handles the connection's asynchronous errors: a request
// the server refused for want of a permission gets no answer, so it ends
// the command at once (when run connected), with that reason, instead of
// waiting out --timeout; nats.go would only print it.
func (f *clientFlags) onAsyncError(signer *events.Signer) nats.Option {
	return nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if !errors.Is(err, nats.ErrPermissionViolation) || f.stop == nil {
			return
		}
		who := "this identity"
		if signer != nil && f.nats.nkey == "" && f.nats.creds == "" {
			who = "token " + signer.Key
		}
		f.stop(fmt.Errorf("the bus refused %s: %w (%s)", who, err, refusalReason(err)))
	})
}

// refusalReason says why the bus refused a request for want of a
// permission: what the token's role or apps do not allow.
func refusalReason(violation error) string {
	if strings.Contains(violation.Error(), secrets.BucketName) {
		return "secret values are written on the bus by a deployer of one app or of every app only, never of an app glob, whose writes could reach other apps' secrets: docs/bus.md §3"
	}
	return "its role or apps do not allow it: docs/bus.md §3"
}

// refused explains a NATS server's refusal of the identity the CLI gave.
func (f *clientFlags) refused(signer *events.Signer, err error) error {
	switch {
	case f.nats.nkey != "" || f.nats.creds != "":
		return fmt.Errorf("NATS at %s refused the identity in %s: %w", f.natsURL, cmp.Or(f.nats.nkey, f.nats.creds), err)
	case signer != nil:
		return fmt.Errorf("NATS at %s refused token %s: it is revoked or unknown there, or made before tokens were identities on the bus (make a new one with `revline tokens create`): %w", f.natsURL, signer.Key, err)
	}
	return fmt.Errorf("NATS at %s refused a client without identity: give a token (%s, --token-file, or set REVLINE_DATA_DIR to the data directory of a serve on this machine, whose auth/%s is used): %w", f.natsURL, envToken, auth.BootstrapFile, err)
}

func (s *session) close() { s.nc.Close() }

// runE makes cmd's RunE: check the flags and positional arguments as check
// does, then connect and run fn with the --timeout deadline. Every usage
// error is reported before connecting.
func (f *clientFlags) runE(cmd *cobra.Command, validate func() error, fn func(ctx context.Context, e env, s *session, pos []string) error) {
	cmd.RunE = func(cmd *cobra.Command, pos []string) error {
		e := envOf(cmd)
		if err := f.check(e, pos, validate); err != nil {
			return err
		}
		return f.run(e.ctx, func(ctx context.Context, s *session) error { return fn(ctx, e, s, pos) })
	}
}

// attach gives f the root's connection flags, from the context Main runs
// the command with.
func (f *clientFlags) attach(ctx context.Context) error {
	conn, ok := ctx.Value(connectionKey{}).(*connection)
	if !ok {
		return errors.New("the command runs without the root's connection flags (run it through Main)")
	}
	f.connection = conn
	return nil
}

// run connects and runs fn with the --timeout deadline; a request the
// bus refuses ends it with the refusal.
func (f *clientFlags) run(ctx context.Context, fn func(ctx context.Context, s *session) error) error {
	if err := f.attach(ctx); err != nil {
		return err
	}
	ctx, explain, stop := f.refusable(ctx)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	s, err := f.connect(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	return explain(fn(ctx, s))
}

// refusable returns ctx, ended as soon as the bus refuses one of the
// command's requests (onAsyncError: NATS answers a refused request with
// nothing, and it would wait out its deadline), and explain, which turns
// the error of what ran in it into that refusal when the refusal ended it.
func (f *clientFlags) refusable(ctx context.Context) (refusableCtx context.Context, explain func(error) error, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	f.stop = cancel
	explain = func(err error) error {
		if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
			return cause
		}
		return err
	}
	return ctx, explain, func() { cancel(nil) }
}

// check checks a client command's flags (with validate, if given, too) and
// its first positional argument (firstArg), without
// connecting; cobra has checked how many arguments there are.
func (f *clientFlags) check(e env, pos []string, validate func() error) error {
	if err := f.attach(e.ctx); err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	if showProgress(f.output, isTerminalWriter(e.stderr)) {
		f.progress = func(line string) { fmt.Fprintf(e.stderr, "… %s\n", line) }
	}
	f.colour = useColour(isTerminalWriter(e.stdout), os.Getenv(envNoColor))
	if validate != nil {
		if err := validate(); err != nil {
			return err
		}
	}
	if len(pos) > 0 {
		return f.firstArg(pos[0])
	}
	return nil
}

// asUsage makes the errors of check usage errors.
func asUsage(check func(string) error) func(string) error {
	return func(s string) error {
		if err := check(s); err != nil {
			return usageError{err.Error()}
		}
		return nil
	}
}

// argCount says how many positional arguments a command takes: "1", or
// "0 to 1".
func argCount(nargs, optional int) string {
	if optional == 0 {
		return strconv.Itoa(nargs)
	}
	return fmt.Sprintf("%d to %d", nargs, nargs+optional)
}
