package cli

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/events"
)

// The token the CLI signs its commands and token requests with (docs/bus.md
// §3): the server refuses unsigned ones, and records the token as the
// actor.
const (
	envToken     = "REVLINE_TOKEN"
	envTokenFile = "REVLINE_TOKEN_FILE"
)

// signer returns the signer of the token the CLI acts as, which is also
// its identity on the bus (events.Signer.NATSOptions): the value in
// REVLINE_TOKEN, else the one in the --token-file file, else, when NATS is
// on this machine, the bootstrap admin token of the local serve
// (DATA_DIR/auth/admin.token, for its operator); nil when there is none.
func (f *clientFlags) signer() (*events.Signer, error) {
	value := os.Getenv(envToken)
	if value == "" && f.tokenFile != "" {
		data, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, usagef("--token-file %s: %v", f.tokenFile, err)
		}
		value = string(data)
	}
	if value == "" {
		if !f.nats.localIdentity || !loopbackOnly(f.natsURL) {
			return nil, nil
		}
		data, err := os.ReadFile(filepath.Join(localAuthDir(), auth.BootstrapFile))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		value = string(data)
	}
	value = strings.TrimSpace(value)
	name := auth.ClaimedName(value)
	if name == "" {
		return nil, usagef("the token (--token-file, %s) is not a Revline token (rvl_NAME_SECRET)", envToken)
	}
	return events.NewSigner(name, value), nil
}

// localAuthDir is the auth directory of the serve on this machine:
// DATA_DIR/auth, DATA_DIR being REVLINE_DATA_DIR or serve's default.
func localAuthDir() string {
	return filepath.Join(envOr("REVLINE_DATA_DIR", "./revline-data"), "auth")
}
