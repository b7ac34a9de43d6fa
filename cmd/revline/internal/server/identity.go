package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/revline/revline/cmd/revline/internal/auth"
	"github.com/revline/revline/events"
	"github.com/revline/revline/events/commandbus"
	"github.com/revline/revline/events/secrets"
	"github.com/revline/revline/projections/audit"
	"github.com/revline/revline/projections/queryapi"
	"github.com/revline/revline/workers/runner"
	"github.com/revline/revline/workers/webhooks"
)

// Files of the embedded server's identities, in <data dir>/auth (mode
// 0700), each an nkey seed (mode 0600) made on the first start.
const (
	authDir        = "auth"
	serverSeedFile = "server.nk"
	querySeedFile  = "query.nk"
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
		// Made at most once, whole: a serve and a nats-config starting
		// together on a new data directory get the same identity.
		if err := createOnce(path, seed); err != nil {
			return identity{}, fmt.Errorf("save identity: %w", err)
		}
		if seed, err = os.ReadFile(path); err != nil {
			return identity{}, fmt.Errorf("read identity: %w", err)
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

// createOnce writes data to a new file at path, mode 0600, unless a file
// is there already: it is written to a temporary file first and linked in,
// so that no reader ever sees it half written.
func createOnce(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".identity-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// identities are the embedded server's nkey users.
type identities struct {
	server, query, client identity
}

// loadIdentities returns the server's identities and the clients', made
// on the first start.
func loadIdentities(dataDir string) (identities, error) {
	dir := filepath.Join(dataDir, authDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return identities{}, fmt.Errorf("serve: %w", err)
	}
	var ids identities
	for file, id := range map[string]*identity{serverSeedFile: &ids.server, querySeedFile: &ids.query, ClientSeedFile: &ids.client} {
		loaded, err := loadIdentity(filepath.Join(dir, file))
		if err != nil {
			return identities{}, fmt.Errorf("serve: %w", err)
		}
		*id = loaded
	}
	return ids, nil
}

// serverInboxPrefix is the inbox prefix of the server's own connections:
// clients may subscribe to _INBOX.> for their own replies, and must not see
// what JetStream delivers to the server (commands, events, acks).
const serverInboxPrefix = "_INBOX_REVLINE_SERVER"

// users are the embedded server's only identities:
//   - the server's own, with every right;
//   - the query service's, which answers queries but may publish only to
//     inboxes, so that a query whose reply subject names a Revline subject
//     (revline.events.>, say) cannot make it write there;
//   - the clients', which may send commands, hear outcomes, ask queries,
//     read the event log, write secret values and webhook signing secrets
//     (never read them), read and write webhook definitions, read
//     webhooks' deliveries, and ask the server to create, list and revoke
//     HTTP tokens (auth.Serve: the server answers, and only it may read or
//     write the token bucket, auth.BucketName), and ask it to replay the
//     log into its read model (queryapi.SubjectReplay), but not write events or
//     outcomes, answer queries,
//     see others' commands or what is delivered to the server, touch the
//     runner worker's consumer, or change a stream. They have no rights on
//     the command stream's consumers (the command processor's partitions,
//     processor.PartitionConsumerName) nor on its partition subjects
//     (commandbus.PartitionSubjectPrefix): a command reaches its app's
//     partition only through the stream's subject transform. Nor on the
//     snapshot bucket (events.SnapshotBucketName) and the read model's
//     (events.ReadModelBucketName), to write or to read: a cold load of an
//     app and a start of serve begin from what they find there. Time
//     travel's snapshots (audit.SnapshotBucketName) they may read, not
//     write: what they hold is folded from the log they may read anyway.
func (ids identities) users() []*server.NkeyUser {
	js := func(api string) string { return "$JS.API." + api }
	workerConsumer := events.EventStreamName + "." + runner.ConsumerName
	hooksStream := "KV_" + webhooks.BucketName
	deliveriesStream := "KV_" + webhooks.DeliveryBucketName
	return []*server.NkeyUser{
		{Nkey: ids.server.publicKey},
		{Nkey: ids.query.publicKey, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"_INBOX.>", serverInboxPrefix + ".>", "$SRV.>"}},
			Subscribe: &server.SubjectPermission{Allow: []string{queryapi.SubjectPrefix + ">", "$SRV.>"}},
		}},
		{Nkey: ids.client.publicKey, Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{
				Allow: []string{
					events.CommandSubjectPrefix + ">",
					queryapi.SubjectPrefix + ">",
					auth.SubjectPrefix + "*",
					queryapi.SubjectReplay,
					queryapi.SubjectReplayAll,
					// Secret values: written, never read back.
					"$KV." + secrets.BucketName + ".>",
					"$KV." + webhooks.SecretBucketName + ".>",
					// Webhook definitions and redelivery requests: read and
					// written; deliveries: read (key gets and histories).
					"$KV." + webhooks.BucketName + ".>",
					js("DIRECT.GET." + hooksStream + ".>"),
					js("DIRECT.GET." + deliveriesStream + ".>"),
					js("CONSUMER.CREATE." + hooksStream), js("CONSUMER.CREATE." + hooksStream + ".>"),
					js("CONSUMER.CREATE." + deliveriesStream), js("CONSUMER.CREATE." + deliveriesStream + ".>"),
					js("CONSUMER.DELETE." + hooksStream + ".>"), js("CONSUMER.DELETE." + deliveriesStream + ".>"),
					"$JS.FC." + hooksStream + ".>", "$JS.FC." + deliveriesStream + ".>",
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
					// Time travel's snapshots: read only.
					js("DIRECT.GET.KV_" + audit.SnapshotBucketName + ".>"),
				},
				// The runner worker's durable consumer is the server's.
				Deny: []string{
					js("CONSUMER.CREATE." + workerConsumer), js("CONSUMER.CREATE." + workerConsumer + ".>"),
					js("CONSUMER.DELETE." + workerConsumer), js("CONSUMER.MSG.NEXT." + workerConsumer),
				},
			},
			Subscribe: &server.SubjectPermission{Allow: []string{
				"_INBOX.>",
				events.OutcomeSubjectPrefix + ">",
			}},
		}},
	}
}

// NATSAuthorization returns the authorization block of a nats-server
// configuration that gives an external NATS server or cluster the users
// and permissions of the embedded server: the identities in
// <dataDir>/auth (made on the first call, as serve makes them), with
// exactly the rights users gives them. Every node of a cluster includes
// it; serve then connects with --nats-url and --nats-identities, and
// clients with client.nk.
func NATSAuthorization(dataDir string) (string, error) {
	ids, err := loadIdentities(dataDir)
	if err != nil {
		return "", err
	}
	names := map[string]string{
		ids.server.publicKey: "the Revline servers (" + ids.server.seedPath + ")",
		ids.query.publicKey:  "the Revline query service (" + ids.query.seedPath + ")",
		ids.client.publicKey: "Revline clients (" + ids.client.seedPath + ")",
	}
	var b strings.Builder
	b.WriteString("# Revline's NATS users, made by `revline nats-config`: every node of the\n")
	b.WriteString("# cluster includes this block. Enable JetStream on every node.\n")
	b.WriteString("authorization {\n  users: [\n")
	for _, u := range ids.users() {
		fmt.Fprintf(&b, "    # %s\n    {nkey: %q", names[u.Nkey], u.Nkey)
		if p := u.Permissions; p != nil {
			b.WriteString(", permissions: {")
			writeSubjectPermission(&b, "publish", p.Publish)
			if p.Publish != nil && p.Subscribe != nil {
				b.WriteString(", ")
			}
			writeSubjectPermission(&b, "subscribe", p.Subscribe)
			b.WriteString("}")
		}
		b.WriteString("}\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}

func writeSubjectPermission(b *strings.Builder, name string, p *server.SubjectPermission) {
	if p == nil {
		return
	}
	fmt.Fprintf(b, "%s: {", name)
	list := func(key string, subjects []string) {
		quoted := make([]string, len(subjects))
		for i, s := range subjects {
			quoted[i] = strconv.Quote(s)
		}
		fmt.Fprintf(b, "%s: [%s]", key, strings.Join(quoted, ", "))
	}
	list("allow", p.Allow)
	if len(p.Deny) > 0 {
		b.WriteString(", ")
		list("deny", p.Deny)
	}
	b.WriteString("}")
}
