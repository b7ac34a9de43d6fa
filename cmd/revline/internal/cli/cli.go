// Package cli is the `revline` command line: `serve`, which runs the
// control plane, and the client commands modelled on fal's (`deploy`,
// `apps list`, `apps list-rev`, `apps set-rev`, `apps rollout`,
// `apps delete-rev`, `apps scale`, `apps runners`, `runners logs`, ...),
// which talk to a server over NATS.
package cli

import (
	"context"
	"errors"
	"flag"
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
	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/projections/queryapi"
	"github.com/revline/revline/workers/webhooks"
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

// command is one CLI command.
type command struct {
	name    string
	summary string
	usage   string // arguments after the command name
	example string
	run     func(e env, args []string) error
	// optionalArgs is how many positional arguments after the required
	// ones a client command may take (audit's APP).
	optionalArgs int
	// outputs are the output formats of a client command besides table
	// and json.
	outputs []string
	// argNotApp: the first positional argument is not an app's name (a
	// token's).
	argNotApp bool
}

// usageError marks a mistake in how the command was called (exit 2).
type usageError struct{ msg string }

// Error implements the error interface.
func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func commands() []command {
	return []command{
		serveCommand(),
		natsConfigCommand(),
		deployCommand(),
		{name: "apps list", summary: "List apps.", example: "revline apps list -o json", run: appsList},
		{name: "apps list-rev", summary: "List an app's revisions, newest first; the current one is marked. --at shows them as they were then.", usage: "APP", example: "revline apps list-rev my-model --at '2h ago'", run: listRevisions},
		setRevCommand(),
		rolloutCommand(),
		{name: "apps delete-rev", summary: "Delete a revision (not the current one). It leaves the list, never the audit log.", usage: "APP REVISION", example: "revline apps delete-rev my-model v2", run: deleteRevision},
		scaleCommand(),
		runnersCommand(),
		runnerStopCommand(false),
		runnerStopCommand(true),
		{name: "apps suspend", summary: "Stop an app's runners; its current revision shows as suspended.", usage: "APP", example: "revline apps suspend my-model", run: suspend},
		{name: "apps resume", summary: "Bring a suspended app back.", usage: "APP", example: "revline apps resume my-model", run: resume},
		historyCommand(),
		showCommand(),
		blameCommand(),
		diffCommand(),
		runnerLogsCommand(),
		verifyCommand(), // before audit, which would take "verify" for an app
		auditCommand(),
		secretsSetCommand(),
		secretsListCommand(),
		secretsUnsetCommand(),
		webhooksAddCommand(), webhooksListCommand(), webhooksHistoryCommand(), webhooksRemoveCommand(),
		webhooksStatusCommand(webhooks.StatusActive), webhooksStatusCommand(webhooks.StatusDisabled),
		webhooksDeliveriesCommand(), webhooksRedeliverCommand(),
		tokensCreateCommand(),
		tokensListCommand(),
		tokensRevokeCommand(),
		replayCommand(),
		benchCommand(),
		versionCommand(),
	}
}

// Main runs the CLI with args (without the program name) and returns the
// exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := env{ctx: ctx, stdin: os.Stdin, stdout: stdout, stderr: stderr}
	cmd, rest, ok := findCommand(args)
	if !ok {
		return helpFor(e, args)
	}
	err := cmd.run(e, rest)
	var usage usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "Error: %s\nUsage: revline %s %s (see revline %s --help)\n", oneLine(err), cmd.name, cmd.usage, cmd.name)
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "Error: %s\n", oneLine(err))
		return ExitFailed
	}
}

func findCommand(args []string) (command, []string, bool) {
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c, args[len(words):], true
		}
	}
	return command{}, nil, false
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "revline: revisions and rollouts for serverless apps, event-sourced on NATS JetStream.")
	fmt.Fprintln(w, "\nUsage: revline COMMAND [ARGS] [FLAGS]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-18s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun `revline COMMAND --help` for a command's flags and an example.")
}

// oneLine keeps an error message on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// flagSet returns a FlagSet whose --help explains the command with an
// example. It prints nothing itself: parse reports errors in one line.
func (c command) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("revline "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "%s\n\nUsage: revline %s %s [FLAGS]\n\nExample:\n  %s\n\nFlags:\n", c.summary, c.name, c.usage, c.example)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args; --help prints the command's help on stdout and
// returns flag.ErrHelp, a bad flag returns a usageError.
func parse(e env, fs *flag.FlagSet, args []string) ([]string, error) {
	pos, err := parseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(e.stdout)
		fs.Usage()
		return nil, err
	case err != nil:
		return nil, usageError{err.Error()}
	}
	return pos, nil
}

// clientFlags are the flags every client command has.
type clientFlags struct {
	natsURL string
	nats    natsFlags
	output  string
	actor   string
	// tokenFile holds the token the CLI signs with (signing.go).
	tokenFile string
	timeout   time.Duration
	// progress prints a long wait's steps: set for table output on a
	// terminal, nil otherwise (scripts and pipes get the result alone).
	progress func(line string)
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	f.natsURL = envOr(envNATSURL, defaultNATS)
	fs.StringVar(&f.natsURL, "nats-url", f.natsURL, "NATS server of the Revline server (env "+envNATSURL+")")
	f.nats.register(fs)
	f.nats.localIdentity = true
	fs.StringVar(&f.output, "o", outputTable, "output format: table or json")
	fs.StringVar(&f.output, "output", outputTable, "output format: table or json")
	fs.StringVar(&f.actor, "actor", envOr(envActor, defaultActor()), "who you are, recorded on webhook changes; commands record the token that signs them, token:NAME (env "+envActor+")")
	fs.StringVar(&f.tokenFile, "token-file", os.Getenv(envTokenFile), "file holding the token that signs commands (env "+envTokenFile+", or the value in "+envToken+"); default DATA_DIR/auth/admin.token beside the client identity")
	fs.DurationVar(&f.timeout, "timeout", defaultWait, "how long to wait for the server")
}

// validate checks the flags; more are the output formats the command has
// besides table and json.
func (f *clientFlags) validate(more []string) error {
	formats := append([]string{outputTable, outputJSON}, more...)
	if !slices.Contains(formats, f.output) {
		return usagef("output format %q: want %s", f.output, strings.Join(formats, " or "))
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
}

func (f *clientFlags) connect(ctx context.Context) (*session, error) {
	opts, err := f.nats.options(f.natsURL)
	if err != nil {
		return nil, err
	}
	signer, err := f.signer()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(f.natsURL, append([]nats.Option{nats.Name("revline-cli"), nats.Timeout(connectLimit)}, opts...)...)
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
	reader := queryapi.NewClient(nc)
	return &session{
		nc:     nc,
		signer: signer,
		reader: reader,
		logs:   reader,
		events: store,
		control: &control.Control{
			Commands: commandbus.NewClient(js, commandbus.WithSigner(signer)),
			Reader:   reader,
			Events:   store,
			Secrets:  lazySecrets{js: js},
			Actor:    f.actor,
			Progress: f.progress,
		},
	}, nil
}

func (s *session) close() { s.nc.Close() }

// withClient parses a client command's flags, checks its positional
// arguments and, with validate if given, its flags, then connects and runs
// fn with a deadline. Every usage error is reported before connecting.
func withClient(e env, c command, args []string, nargs int, extra func(*flag.FlagSet), validate func() error, fn func(ctx context.Context, s *session, f *clientFlags, pos []string) error) error {
	f, pos, err := clientArgs(e, c, args, nargs, extra, validate)
	if err != nil {
		return err
	}
	return f.run(e.ctx, pos, fn)
}

// run connects and runs fn with the --timeout deadline.
func (f *clientFlags) run(ctx context.Context, pos []string, fn func(ctx context.Context, s *session, f *clientFlags, pos []string) error) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	s, err := f.connect(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	return fn(ctx, s, f, pos)
}

// clientArgs parses and checks a client command's flags and positional
// arguments as withClient does, without connecting.
func clientArgs(e env, c command, args []string, nargs int, extra func(*flag.FlagSet), validate func() error) (*clientFlags, []string, error) {
	fs := c.flagSet()
	var f clientFlags
	f.register(fs)
	if extra != nil {
		extra(fs)
	}
	pos, err := parse(e, fs, args)
	if err != nil {
		return nil, nil, err
	}
	if len(pos) < nargs || len(pos) > nargs+c.optionalArgs {
		return nil, nil, usagef("want %s argument(s) (%s), got %d", argCount(nargs, c.optionalArgs), c.usage, len(pos))
	}
	if err := f.validate(c.outputs); err != nil {
		return nil, nil, err
	}
	if f.output == outputTable && isTerminalWriter(e.stderr) {
		f.progress = func(line string) { fmt.Fprintf(e.stderr, "… %s\n", line) }
	}
	if validate != nil {
		if err := validate(); err != nil {
			return nil, nil, err
		}
	}
	if len(pos) > 0 && !c.argNotApp {
		if err := events.ValidateAppName(pos[0]); err != nil {
			return nil, nil, err
		}
	}
	return &f, pos, nil
}

// argCount says how many positional arguments a command takes: "1", or
// "0 to 1".
func argCount(nargs, optional int) string {
	if optional == 0 {
		return strconv.Itoa(nargs)
	}
	return fmt.Sprintf("%d to %d", nargs, nargs+optional)
}
