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

// signer returns the signer of the token the CLI acts as: the value in
// REVLINE_TOKEN, else the one in the --token-file file, else the
// bootstrap admin token beside the client identity the connection uses
// (DATA_DIR/auth/admin.token, for the operator of a local serve); nil
// when there is none.
func (f *clientFlags) signer() (*events.Signer, error) {
	value := os.Getenv(envToken)
	if value == "" && f.tokenFile != "" {
		data, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, usagef("--token-file %s: %v", f.tokenFile, err)
		}
		value = string(data)
	}
	if value == "" && f.nats.nkey != "" {
		data, err := os.ReadFile(filepath.Join(filepath.Dir(f.nats.nkey), auth.BootstrapFile))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		value = string(data)
	}
	if value == "" {
		return nil, nil
	}
	value = strings.TrimSpace(value)
	name := auth.ClaimedName(value)
	if name == "" {
		return nil, usagef("the token (--token-file, %s) is not a Revline token (rvl_NAME_SECRET)", envToken)
	}
	return events.NewSigner(name, value), nil
}
