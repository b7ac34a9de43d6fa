package cli

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/revline/revline/cmd/revline/internal/auth"
)

// The tokens commands ask the server over NATS (auth.Serve), signed by an
// admin token (the bootstrap one by default: signing.go), with the
// client identity: only the server reads and writes the token bucket.

func tokensCreateCommand() command {
	c := command{
		name:      "tokens create",
		summary:   "Create a bearer token for the HTTP API and the dashboard. Its value is printed once; only its hash is kept.",
		usage:     "NAME",
		example:   "revline tokens create alice --role operator --app 'web-*'",
		argNotApp: true,
	}
	c.run = func(e env, args []string) error {
		var role, apps string
		extra := func(fs *flag.FlagSet) {
			fs.StringVar(&role, "role", "", "viewer (reads), operator (set-rev, rollout, scale, suspend, resume, delete-rev, stop runners), deployer (also deploy), admin (also tokens)")
			fs.StringVar(&apps, "app", auth.AllApps, "glob of the app names the token may touch (path.Match syntax)")
		}
		validate := func() error {
			if _, err := auth.ParseRole(role); err != nil {
				return usagef("--role: %v", err)
			}
			return auth.ValidateAppGlob(apps)
		}
		return withToken(e, c, args, 1, extra, validate, func(ctx context.Context, s *session, f *clientFlags, pos []string) error {
			reply, err := auth.Ask(ctx, s.nc, s.signer, auth.SubjectCreate, auth.Request{Name: pos[0], Role: auth.Role(role), Apps: apps})
			if err != nil {
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
	}
	return c
}

func tokensListCommand() command {
	c := command{name: "tokens list", summary: "List the HTTP API's tokens (never their values), revoked ones too.", example: "revline tokens list"}
	c.run = func(e env, args []string) error {
		return withToken(e, c, args, 0, nil, nil, func(ctx context.Context, s *session, f *clientFlags, _ []string) error {
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
						revoked = when(t.RevokedAt) + " by " + t.RevokedBy
					}
					rows = append(rows, []string{t.Name, string(t.Role), t.Apps, when(t.CreatedAt), t.CreatedBy, revoked})
				}
				table(w, "NAME\tROLE\tAPPS\tCREATED\tCREATED BY\tREVOKED", rows)
			})
		})
	}
	return c
}

func tokensRevokeCommand() command {
	c := command{
		name:      "tokens revoke",
		summary:   "Revoke a token: every server refuses it from its next request on, and its dashboard sessions end.",
		usage:     "NAME",
		example:   "revline tokens revoke alice",
		argNotApp: true,
	}
	c.run = func(e env, args []string) error {
		return withToken(e, c, args, 1, nil, nil, func(ctx context.Context, s *session, f *clientFlags, pos []string) error {
			reply, err := auth.Ask(ctx, s.nc, s.signer, auth.SubjectRevoke, auth.Request{Name: pos[0]})
			return render(e, f, reply.Token, err, func(w io.Writer, t *auth.Token) {
				fmt.Fprintf(w, "Token %s is revoked (since %s, by %s).\n", t.Name, when(t.RevokedAt), t.RevokedBy)
			})
		})
	}
	return c
}

// withToken is withClient for the tokens commands, whose first argument,
// if any, is a token's name.
func withToken(e env, c command, args []string, nargs int, extra func(*flag.FlagSet), validate func() error, fn func(ctx context.Context, s *session, f *clientFlags, pos []string) error) error {
	f, pos, err := clientArgs(e, c, args, nargs, extra, validate)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		if err := auth.ValidateName(pos[0]); err != nil {
			return usageError{err.Error()}
		}
	}
	return f.run(e.ctx, pos, fn)
}
