package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Bootstrap names and file of the first admin token.
const (
	// BootstrapName is the name of the admin token serve makes on its
	// first start.
	BootstrapName = "admin"
	// BootstrapFile is where, in serve's auth directory, its value is
	// written (mode 0600).
	BootstrapFile = "admin.token"
)

// Bootstrap makes the first admin token unless a token named
// BootstrapName exists (on this or another replica, revoked or not), and
// writes its value to dir/BootstrapFile with mode 0600. It returns the
// file's path and whether it made the token now.
func Bootstrap(ctx context.Context, s *Store, dir string, now time.Time) (string, bool, error) {
	path := filepath.Join(dir, BootstrapFile)
	if _, _, err := s.get(ctx, BootstrapName); !errors.Is(err, ErrNotFound) {
		return path, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("bootstrap token: %w", err)
	}
	// The file is made (0600) before the token is stored, so that a
	// directory that cannot take it fails first; the value goes in once
	// stored, and the file gets its name last.
	tmp, err := os.CreateTemp(dir, BootstrapFile+".*")
	if err != nil {
		return "", false, fmt.Errorf("bootstrap token: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone once renamed
	value, _, err := s.Create(ctx, NewToken{Name: BootstrapName, Role: RoleAdmin, CreatedBy: "serve:bootstrap"}, now)
	if errors.Is(err, ErrNameTaken) {
		_ = tmp.Close()
		return path, false, nil // another replica was first
	}
	if err != nil {
		_ = tmp.Close()
		return "", false, err
	}
	_, werr := tmp.WriteString(value + "\n")
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		// Unwritten, the token would be an admin no one holds.
		if _, rerr := s.Revoke(ctx, BootstrapName, "serve:bootstrap", now); rerr != nil {
			werr = errors.Join(werr, rerr)
		}
		return "", false, fmt.Errorf("bootstrap token: write %s: %w", path, werr)
	}
	return path, true, nil
}

// writeSecretFile writes value and a newline to path, mode 0600, whole or
// not at all: into a temporary file of the same directory, renamed last.
func writeSecretFile(path, value string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // gone once renamed
	_, err = tmp.WriteString(value + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	return err
}
