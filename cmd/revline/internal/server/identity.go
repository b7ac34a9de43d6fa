package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/projections/queryapi"
)

// Files of the embedded server's identities, in <data dir>/auth (mode
// 0700), each an nkey seed (mode 0600) made on the first start.
const (
	authDir        = "auth"
	serverSeedFile = "server.nk"
	// ClientSeedFile is the clients' identity: the CLI and any NATS client
	// authenticate with it (nats.NkeyOptionFromSeed, `nats --nkey`).
	ClientSeedFile = "client.nk"
)

// identity is one nkey user of the embedded server.
type identity struct {
	seedPath  string
	publicKey string
}

// loadIdentity reads the nkey seed at path, making one first if there is
// none.
func loadIdentity(path string) (identity, error) {
	seed, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return identity{}, fmt.Errorf("make identity %s: %w", path, err)
		}
		if seed, err = kp.Seed(); err != nil {
			return identity{}, fmt.Errorf("make identity %s: %w", path, err)
		}
		if err := os.WriteFile(path, seed, 0o600); err != nil {
			return identity{}, fmt.Errorf("save identity: %w", err)
		}
	} else if err != nil {
		return identity{}, fmt.Errorf("read identity: %w", err)
	}
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		return identity{}, fmt.Errorf("identity %s: %w", path, err)
	}
	public, err := kp.PublicKey()
	if err != nil {
		return identity{}, fmt.Errorf("identity %s: %w", path, err)
	}
	return identity{seedPath: path, publicKey: public}, nil
}

// identities returns the server's identity and the clients', made on the
// first start.
func identities(dataDir string) (serverID, clientID identity, err error) {
	dir := filepath.Join(dataDir, authDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return identity{}, identity{}, fmt.Errorf("serve: %w", err)
	}
	if serverID, err = loadIdentity(filepath.Join(dir, serverSeedFile)); err != nil {
		return identity{}, identity{}, fmt.Errorf("serve: %w", err)
	}
	if clientID, err = loadIdentity(filepath.Join(dir, ClientSeedFile)); err != nil {
		return identity{}, identity{}, fmt.Errorf("serve: %w", err)
	}
	return serverID, clientID, nil
}

// users are the embedded server's only identities: the server's own, with
// every right, and the clients', which may send commands, hear their
// outcomes, ask queries and read the event log, but not write events or
// outcomes, answer queries, see others' commands, or change a stream.
func users(serverID, clientID identity) []*server.NkeyUser {
	js := func(api string) string { return "$JS.API." + api }
	return []*server.NkeyUser{
		{Nkey: serverID.publicKey},
		{Nkey: clientID.publicKey, Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{
				events.CommandSubjectPrefix + ">",
				queryapi.SubjectPrefix + ">",
				js("INFO"),
				js("STREAM.INFO.*"),
				js("STREAM.MSG.GET." + commandbus.OutcomeStreamName),
				// Reading the event log: direct gets and ordered consumers.
				js("STREAM.MSG.GET." + events.EventStreamName),
				js("DIRECT.GET." + events.EventStreamName),
				js("DIRECT.GET." + events.EventStreamName + ".>"),
				js("CONSUMER.CREATE." + events.EventStreamName + ".>"),
				js("CONSUMER.INFO." + events.EventStreamName + ".>"),
				js("CONSUMER.DELETE." + events.EventStreamName + ".>"),
				js("CONSUMER.MSG.NEXT." + events.EventStreamName + ".>"),
			}},
			Subscribe: &server.SubjectPermission{Allow: []string{
				"_INBOX.>",
				events.OutcomeSubjectPrefix + ">",
			}},
		}},
	}
}
