package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/revline/revline/aggregates"
	"github.com/revline/revline/cmd/revline/internal/control"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/secrets"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// secretsSetCommand stores secret values: NAME=VALUE arguments, or a bare
// NAME whose value is read from stdin (kept out of the shell's history and
// the process list).
func secretsSetCommand() *cobra.Command {
	cmd, f := clientCommand("set APP NAME[=VALUE]...", "Set an app's secrets",
		"printf %s \"$HF_TOKEN\" | revline secrets set my-model HF_TOKEN --rollout", 2, aggregates.MaxSecrets-1)
	cmd.Long = "Set an app's secrets: runners get them as environment variables. Values never enter the event log; a bare NAME reads its value from stdin."
	var rollout bool
	cmd.Flags().BoolVar(&rollout, "rollout", false, "then roll the app's runners out gracefully, so that running ones get the new values")
	cmd.RunE = func(cmd *cobra.Command, pos []string) error {
		e := envOf(cmd)
		var pairs [][2]string
		parsePairs := func(pos []string) error {
			fromStdin := 0
			for _, arg := range pos {
				name, _, given := strings.Cut(arg, "=")
				if err := events.ValidateSecretName(name); err != nil {
					return usageError{err.Error()}
				}
				if !given {
					fromStdin++
				}
			}
			if fromStdin > 1 {
				return usagef("only one secret can take its value from stdin; give the others as NAME=VALUE")
			}
			for _, arg := range pos {
				name, value, given := strings.Cut(arg, "=")
				if !given {
					if isTerminal(e.stdin) {
						fmt.Fprintf(e.stderr, "Value of %s (then Enter and Ctrl-D): ", name)
					}
					b, err := io.ReadAll(io.LimitReader(e.stdin, secrets.MaxValueBytes+1))
					if err != nil {
						return fmt.Errorf("read the value of %s from stdin: %w", name, err)
					}
					value = string(bytes.TrimSuffix(b, []byte("\n")))
				}
				pairs = append(pairs, [2]string{name, value})
			}
			return nil
		}
		if err := f.check(e, pos, nil); err != nil {
			return err
		}
		if err := parsePairs(pos[1:]); err != nil {
			return err
		}
		return f.run(e.ctx, func(ctx context.Context, s *session) error {
			app := pos[0]
			results := make([]control.SecretResult, 0, len(pairs))
			for _, p := range pairs {
				res, err := s.control.SetSecret(ctx, app, p[0], []byte(p[1]))
				if err != nil {
					return err
				}
				results = append(results, res)
			}
			var ro *rolloutOutcome
			if rollout {
				res, err := s.control.Rollout(ctx, app, false, true)
				if err != nil {
					return fmt.Errorf("secrets set; rollout: %w", err)
				}
				ro = &rolloutOutcome{app, res}
			}
			if f.output == outputJSON {
				return printJSON(e.stdout, struct {
					Secrets []control.SecretResult `json:"secrets"`
					Rollout *rolloutOutcome        `json:"rollout,omitempty"`
				}{results, ro})
			}
			for _, res := range results {
				if res.Status == events.OutcomeNoOp {
					fmt.Fprintf(e.stdout, "Nothing to do: %s\n", res.Message)
					continue
				}
				fmt.Fprintf(e.stdout, "Set secret %s of %s (version %d).\n", res.Name, app, res.Version)
			}
			if ro == nil {
				fmt.Fprintf(e.stdout, "Runners started from now on get it; running ones keep the old value until a rollout: revline apps rollout %s\n", app)
				return nil
			}
			printRollout(e.stdout, *ro)
			if ro.Status == "failed" {
				return errReported
			}
			return nil
		})
	}
	return cmd
}

func secretsUnsetCommand() *cobra.Command {
	cmd, f := clientCommand("unset APP NAME...", "Remove an app's secrets",
		"revline secrets unset my-model HF_TOKEN", 2, aggregates.MaxSecrets-1)
	cmd.Long = "Remove an app's secrets: the event log records it and the values are purged. Running runners keep them until a rollout."
	f.runE(cmd, nil, func(ctx context.Context, e env, s *session, pos []string) error {
		results := make([]control.SecretResult, 0, len(pos)-1)
		for _, name := range pos[1:] {
			res, err := s.control.UnsetSecret(ctx, pos[0], name)
			if err != nil {
				return err
			}
			results = append(results, res)
		}
		return render(e, f, results, nil, func(w io.Writer, results []control.SecretResult) {
			for _, res := range results {
				fmt.Fprintf(w, "Unset secret %s of %s.\n", res.Name, res.App)
			}
		})
	})
	return cmd
}

func secretsListCommand() *cobra.Command {
	cmd, f := clientCommand("list APP", "List an app's secrets",
		"revline secrets list my-model -o json", 1, 0)
	cmd.Long = "List an app's secrets: names, versions, who set them and when; never values."
	f.runE(cmd, nil, func(ctx context.Context, e env, s *session, pos []string) error {
		views, err := control.ListSecrets(ctx, s.events, pos[0])
		return render(e, f, views, err, func(w io.Writer, views []control.SecretView) {
			rows := make([][]string, len(views))
			for i, v := range views {
				rows[i] = []string{v.Name, fmt.Sprint(v.Version), v.SetBy, f.style().at(v.SetAt)}
			}
			table(w, "NAME\tVERSION\tSET BY\tSET AT", rows)
		})
	})
	return cmd
}

// lazySecrets opens the secret store on first use, so that commands that
// do not touch secrets do not need the bucket.
type lazySecrets struct{ js jetstream.JetStream }

// Put implements control.SecretWriter.
func (l lazySecrets) Put(ctx context.Context, app, name string, value []byte) (uint64, error) {
	store, err := secrets.Open(ctx, l.js)
	if err != nil {
		return 0, err
	}
	return store.Put(ctx, app, name, value)
}

// Purge implements control.SecretWriter.
func (l lazySecrets) Purge(ctx context.Context, app, name string) error {
	store, err := secrets.Open(ctx, l.js)
	if err != nil {
		return err
	}
	return store.Purge(ctx, app, name)
}

// isTerminal reports whether r is a terminal, where a prompt helps.
func isTerminal(r io.Reader) bool {
	file, ok := r.(*os.File)
	return ok && isTerminalFile(file)
}

// isTerminalWriter reports whether w is a terminal, where progress helps.
func isTerminalWriter(w io.Writer) bool {
	file, ok := w.(*os.File)
	return ok && isTerminalFile(file)
}

func isTerminalFile(file *os.File) bool {
	_, err := unix.IoctlGetTermios(int(file.Fd()), unix.TCGETS)
	return err == nil
}
