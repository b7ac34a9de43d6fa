package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/nats-io/nkeys"
	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/spf13/cobra"
)

// The tokens commands ask the server over NATS (auth.Serve), signed by an
// admin token (the bootstrap one by default: signing.go), connected as
// that token: only the server reads and writes the token bucket.

func tokensCreateCommand() *cobra.Command {
	cmd, f := tokenCommand("create NAME", "Create a bearer token",
		"revline tokens create alice --role operator --app 'web-*'", 1)
	cmd.Long = "Create a bearer token for the HTTP API and the dashboard. Its value is printed once; only its hash is kept."
	var role, apps string
	cmd.Flags().StringVar(&role, "role", "", "viewer (reads), operator (set-rev, rollout, scale, suspend, resume, delete-rev, stop runners), deployer (also deploy), admin (also tokens)")
	cmd.Flags().StringVar(&apps, "app", auth.AllApps, "glob of the app names the token may touch (path.Match syntax)")
	validate := func() error {
		if _, err := auth.ParseRole(role); err != nil {
			return usagef("--role: %v", err)
		}
		return auth.ValidateAppGlob(apps)
	}
	f.runE(cmd, validate, func(ctx context.Context, e env, s *session, pos []string) error {
		// The value comes back sealed to a key of this call's own: other
		// connections of the same token can read the reply.
		seal, err := nkeys.CreateCurveKeys()
		if err != nil {
			return err
		}
		sealTo, err := seal.PublicKey()
		if err != nil {
			return err
		}
		reply, err := auth.Ask(ctx, s.nc, s.signer, auth.SubjectCreate, auth.Request{Name: pos[0], Role: auth.Role(role), Apps: apps, SealTo: sealTo})
		if err != nil {
			return err
		}
		if err := reply.OpenValue(seal); err != nil {
			return err
		}
		if f.output == outputJSON {
			return printJSON(e.stdout, struct {
				Value string     `json:"value"`
				Token auth.Token `json:"token"`
			}{reply.Value, *reply.Token})
		}
		t := reply.Token
		fmt.Fprintf(e.stdout, "Created token %s: role %s, apps %s. Its value, shown this once and stored nowhere:\n\n%s\n\n", t.Name, t.Role, t.Apps, reply.Value)
		fmt.Fprintln(e.stdout, "Send it as `Authorization: Bearer <value>` to the HTTP API, or paste it in the dashboard's login page.")
		return nil
	})
	return cmd
}

func tokensListCommand() *cobra.Command {
	cmd, f := tokenCommand("list", "List tokens", "revline tokens list", 0)
	cmd.Long = "List the HTTP API's tokens (never their values), revoked ones too."
	f.runE(cmd, nil, func(ctx context.Context, e env, s *session, _ []string) error {
		reply, err := auth.Ask(ctx, s.nc, s.signer, auth.SubjectList, auth.Request{})
		tokens := reply.Tokens
		if tokens == nil {
			tokens = []auth.Token{}
		}
		return render(e, f, tokens, err, func(w io.Writer, tokens []auth.Token) {
			rows := make([][]string, 0, len(tokens))
			for _, t := range tokens {
				revoked := "-"
				if t.Revoked {
					revoked = f.style().at(t.RevokedAt) + " by " + t.RevokedBy
				}
				rows = append(rows, []string{t.Name, string(t.Role), t.Apps, f.style().at(t.CreatedAt), t.CreatedBy, revoked})
			}
			table(w, "NAME\tROLE\tAPPS\tCREATED\tCREATED BY\tREVOKED", rows)
		})
	})
	return cmd
}

func tokensRevokeCommand() *cobra.Command {
	cmd, f := tokenCommand("revoke NAME", "Revoke a token", "revline tokens revoke alice", 1)
	cmd.Long = "Revoke a token: every server refuses it from its next request on, and its dashboard sessions end."
	f.runE(cmd, nil, func(ctx context.Context, e env, s *session, pos []string) error {
		reply, err := auth.Ask(ctx, s.nc, s.signer, auth.SubjectRevoke, auth.Request{Name: pos[0]})
		return render(e, f, reply.Token, err, func(w io.Writer, t *auth.Token) {
			fmt.Fprintf(w, "Token %s is revoked (since %s, by %s).\n", t.Name, when(t.RevokedAt), t.RevokedBy)
		})
	})
	return cmd
}

// tokenCommand is clientCommand for the tokens commands, whose first
// argument, if any, is a token's name.
func tokenCommand(use, short, example string, nargs int) (*cobra.Command, *clientFlags) {
	cmd, f := clientCommand(use, short, example, nargs, 0)
	f.firstArg = asUsage(auth.ValidateName)
	return cmd, f
}
