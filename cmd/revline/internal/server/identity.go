package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	// legacyClientSeedFile was the identity every client shared, before
	// each token was one (tokenUser): no longer a user of the server.
	legacyClientSeedFile = "client.nk"
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

// identities are the server's own nkey users; clients connect as their
// tokens (tokenUser).
type identities struct {
	server, query identity
}

// loadIdentities returns the server's identities, made on the first
// start.
func loadIdentities(dataDir string) (identities, error) {
	dir := filepath.Join(dataDir, authDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return identities{}, fmt.Errorf("serve: %w", err)
	}
	var ids identities
	for file, id := range map[string]*identity{serverSeedFile: &ids.server, querySeedFile: &ids.query} {
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

// js is the JetStream API subject of api.
func js(api string) string { return "$JS.API." + api }

// webhookRights are the subjects that manage webhooks (§12 of
// docs/bus.md): definitions and redelivery requests read and written,
// signing secrets written and never read, deliveries read.
func webhookRights() []string {
	hooksStream := "KV_" + webhooks.BucketName
	deliveriesStream := "KV_" + webhooks.DeliveryBucketName
	return []string{
		"$KV." + webhooks.SecretBucketName + ".>",
		"$KV." + webhooks.BucketName + ".>",
		js("STREAM.INFO." + hooksStream), js("STREAM.INFO." + deliveriesStream), js("STREAM.INFO.KV_" + webhooks.SecretBucketName),
		js("DIRECT.GET." + hooksStream + ".>"),
		js("DIRECT.GET." + deliveriesStream + ".>"),
		js("CONSUMER.CREATE." + hooksStream), js("CONSUMER.CREATE." + hooksStream + ".>"),
		js("CONSUMER.CREATE." + deliveriesStream), js("CONSUMER.CREATE." + deliveriesStream + ".>"),
		js("CONSUMER.DELETE." + hooksStream + ".>"), js("CONSUMER.DELETE." + deliveriesStream + ".>"),
		"$JS.FC." + hooksStream + ".>", "$JS.FC." + deliveriesStream + ".>",
	}
}

// eventReads are the subjects that read the whole event log: direct and
// leader gets, and consumers with any filter.
func eventReads() []string {
	return []string{
		js("STREAM.MSG.GET." + events.EventStreamName),
		js("DIRECT.GET." + events.EventStreamName),
		js("DIRECT.GET." + events.EventStreamName + ".>"),
		js("CONSUMER.CREATE." + events.EventStreamName + ".>"),
	}
}

// appEventReads are the subjects that read app's events alone: a direct
// get of the last message of one of its subjects (the server refuses any
// other request on a subject of this form), and consumers whose filter is
// within the app's events (the filter is in the subject, and the server
// refuses a request whose configuration has another).
func appEventReads(app string) []string {
	return []string{
		js("DIRECT.GET." + events.EventStreamName + "." + events.AppEventsFilter(app)),
		js("CONSUMER.CREATE." + events.EventStreamName + ".*." + events.AppEventsFilter(app)),
	}
}

// ownOutcomeReads is the subject that looks up the outcomes of name's
// commands: a direct get of the last message of one of its outcome
// subjects (events.KeyOutcomes), which names the subject in the request's
// own (the server refuses any other request on a subject of this form).
// A get from the stream leader (STREAM.MSG.GET) names its subject in the
// request's body, where no permission can see it: no token has it.
func ownOutcomeReads(name string) string {
	return js("DIRECT.GET." + commandbus.OutcomeStreamName + "." + events.KeyOutcomes(name))
}

// timeTravelReads are the subjects that read app's time travel snapshots
// (its index and its folds, audit.SnapshotBucketName); app "*" is every
// app. Key gets are direct gets by subject, which the server allows only
// for the subject the request names.
func timeTravelReads(app string) []string {
	bucket := "KV_" + audit.SnapshotBucketName
	keys := js("DIRECT.GET." + bucket + ".$KV." + audit.SnapshotBucketName + ".")
	return []string{js("STREAM.INFO." + bucket), keys + "index." + app, keys + "fold." + app + ".*"}
}

// consumerUse are the subjects that use a consumer of the event stream
// once made: reading its messages, its info, deleting it. Consumer names
// cannot be limited to a token's own (a permission matches whole subject
// tokens, never a prefix), so a token can use a consumer whose name it
// knows: the ordered consumers' names are random, the runner worker's is
// denied (serverOwnDenied), and a webhook's holds a keyed hash that
// only the server makes (webhooks.Store.ConsumerName). What a token creates with
// these rights the server deletes if it could outlive the token
// (consumerReaper).
func consumerUse() []string {
	return []string{
		js("CONSUMER.MSG.NEXT." + events.EventStreamName + ".*"),
		js("CONSUMER.INFO." + events.EventStreamName + ".*"),
		js("CONSUMER.DELETE." + events.EventStreamName + ".*"),
	}
}

// serverOwnDenied keeps the runner worker's durable consumer the
// server's, and the key of the webhooks' consumer names
// (webhooks.ConsumerKeyName), in a bucket admins otherwise write to: a
// key changed while replicas run would have them name the same webhook's
// consumer differently.
func serverOwnDenied() []string {
	workerConsumer := events.EventStreamName + "." + runner.ConsumerName
	return []string{
		js("CONSUMER.CREATE." + workerConsumer), js("CONSUMER.CREATE." + workerConsumer + ".>"),
		js("CONSUMER.DELETE." + workerConsumer), js("CONSUMER.MSG.NEXT." + workerConsumer),
		"$KV." + webhooks.SecretBucketName + "." + webhooks.ConsumerKeyName,
	}
}

// users are the embedded server's only identities:
//   - the server's own, with every right;
//   - the query service's, which answers queries but may publish only to
//     inboxes, so that a query whose reply subject names a Revline subject
//     (revline.events.>, say) cannot make it write there;
//   - one per live token with a key (tokenUser), with the rights of its
//     role and apps.
//
// No token may write events or outcomes, answer queries or token
// requests, see others' commands or what is delivered to the server, touch
// the runner worker's consumer, or change a stream. None has rights on
// the command stream's consumers (the command processor's partitions,
// processor.PartitionConsumerName) nor on its partition subjects
// (commandbus.PartitionSubjectPrefix): a command reaches its app's
// partition only through the stream's subject transform. Nor on the
// token bucket (auth.BucketName: the server answers token requests,
// auth.Serve), the snapshot bucket (events.SnapshotBucketName) or the
// read model's (events.ReadModelBucketName), to write or to read: a cold
// load of an app and a start of serve begin from what they find there.
// Time travel's snapshots (audit.SnapshotBucketName) a token may read for
// the apps whose events it reads, never write: what they hold is folded
// from those events.
func (ids identities) users(tokens []auth.Token) []*server.NkeyUser {
	users := []*server.NkeyUser{
		{Nkey: ids.server.publicKey},
		{Nkey: ids.query.publicKey, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"_INBOX.>", serverInboxPrefix + ".>", "$SRV.>"}},
			Subscribe: &server.SubjectPermission{Allow: []string{queryapi.SubjectPrefix + ">", "$SRV.>"}},
		}},
	}
	for _, t := range tokens {
		if u := tokenUser(t); u != nil {
			users = append(users, u)
		}
	}
	return users
}

// tokenUser is the NATS user of a token: its key (events.NATSUser), with
// the rights of its role on its apps; nil for a revoked token or one made
// before tokens had keys (it works over HTTP only).
//
// Every token may ask queries (the query service answers only those it
// signed, about its apps: queryapi.WithAuthorizer), read the events of its
// apps (below), and
// subscribe to its own inbox (events.InboxPrefix) and nowhere else in
// _INBOX. An operator may also send commands, and receive and look up the
// outcomes of its own (those the processor publishes under its name,
// events.OutcomeSubject), never another token's; a
// deployer also write its apps' secret values (one app's, or every app's;
// a glob's none, below); an admin of every app also
// manage webhooks, ask for token requests and replays. The command
// processor checks each command's signature and the token's role and apps
// all the same: these rights are the outer wall.
//
// Apps: a token for one app by its exact name may publish commands only on
// that app's subjects, read its events only, and write its secrets only.
// A glob (web-*) cannot be written as a NATS subject: such a token may
// publish commands for every app, which the processor refuses for the
// apps outside its glob; it reads no events over the bus at all, and
// writes no secret values: the bucket keeps one version of each, which a
// set_secret pins, so a value overwritten or purged in another app would
// keep that app's runners from starting.
func tokenUser(t auth.Token) *server.NkeyUser {
	if t.Revoked || t.PublicKey == "" {
		return nil
	}
	pub, err := events.DecodePublicKey(t.PublicKey)
	if err != nil {
		return nil
	}
	user, err := events.NATSUser(pub)
	if err != nil {
		return nil
	}
	app := ""
	if !t.AllApps() && events.ValidateAppName(t.Apps) == nil {
		app = t.Apps
	}
	publish := []string{
		queryapi.SubjectPrefix + ">",
		js("STREAM.INFO." + events.EventStreamName),
	}
	switch {
	case t.AllApps():
		publish = slices.Concat(publish, eventReads(), consumerUse(), timeTravelReads("*"))
	case app != "":
		publish = slices.Concat(publish, appEventReads(app), consumerUse(), timeTravelReads(app))
	}
	subscribe := []string{events.InboxPrefix(t.Name) + ".>"}
	// appSubjects is prefix followed by the token's app, or by every app.
	appSubjects := func(prefix string) string {
		if app == "" {
			return prefix + ">"
		}
		return prefix + app + ".>"
	}
	if t.Role.Allows(auth.Operate) {
		publish = append(publish, appSubjects(events.CommandSubjectPrefix), ownOutcomeReads(t.Name))
		subscribe = append(subscribe, events.KeyOutcomes(t.Name))
	}
	if t.Role.Allows(auth.Deploy) && (t.AllApps() || app != "") {
		publish = append(publish, appSubjects("$KV."+secrets.BucketName+"."), js("STREAM.INFO.KV_"+secrets.BucketName))
	}
	if t.Authorize(auth.Admin, "") == nil {
		publish = slices.Concat(publish, []string{auth.SubjectPrefix + "*", queryapi.SubjectReplay, queryapi.SubjectReplayAll}, webhookRights())
	}
	return &server.NkeyUser{Nkey: user, Permissions: &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: publish, Deny: serverOwnDenied()},
		Subscribe: &server.SubjectPermission{Allow: subscribe},
	}}
}

// NATSAuthorization returns the authorization block of a nats-server
// configuration that gives an external NATS server or cluster the users
// and permissions of the embedded server: the identities in
// <dataDir>/auth (made on the first call, as serve makes them), and one
// user per live token of tokens, with exactly the rights users gives
// them. Every node of a cluster includes it; serve then connects with
// --nats-url and --nats-identities, and clients as their tokens. A token
// made or revoked later is a user, or no longer one, only once the block
// is printed again (ClusterTokens reads them) and the nodes reload it.
func NATSAuthorization(dataDir string, tokens []auth.Token) (string, error) {
	ids, err := loadIdentities(dataDir)
	if err != nil {
		return "", err
	}
	names := map[string]string{
		ids.server.publicKey: "the Revline servers (" + ids.server.seedPath + ")",
		ids.query.publicKey:  "the Revline query service (" + ids.query.seedPath + ")",
	}
	for _, t := range tokens {
		if u := tokenUser(t); u != nil {
			names[u.Nkey] = fmt.Sprintf("token %s: %s of apps %s", t.Name, t.Role, t.Apps)
		}
	}
	var b strings.Builder
	b.WriteString("# Revline's NATS users, made by `revline nats-config`: every node of the\n")
	b.WriteString("# cluster includes this block. Enable JetStream on every node.\n")
	if tokens == nil {
		b.WriteString("# No token is a user yet: once serve runs, print this again with --nats-url\n")
		b.WriteString("# and reload the nodes (nats-server --signal reload).\n")
	} else {
		b.WriteString("# Tokens made or revoked later: print this again with --nats-url and reload\n")
		b.WriteString("# the nodes (nats-server --signal reload); a revoked token stays a user until then.\n")
	}
	b.WriteString("authorization {\n  users: [\n")
	for _, u := range ids.users(tokens) {
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

// NATSConfig is what `revline nats-config` prints: NATSAuthorization with
// the tokens of the Revline on the NATS at natsURL, none when it is "".
func NATSConfig(ctx context.Context, dataDir, natsURL string) (string, error) {
	var tokens []auth.Token
	if natsURL != "" {
		var err error
		if tokens, err = ClusterTokens(ctx, dataDir, natsURL); err != nil {
			return "", err
		}
	}
	return NATSAuthorization(dataDir, tokens)
}

// ClusterTokens returns the tokens of the Revline whose streams are on
// the NATS server or cluster at url, for NATSAuthorization: read as the
// server identity of <dataDir>/auth.
func ClusterTokens(ctx context.Context, dataDir, url string) ([]auth.Token, error) {
	ids, err := loadIdentities(dataDir)
	if err != nil {
		return nil, err
	}
	asServer, err := nats.NkeyOptionFromSeed(ids.server.seedPath)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	nc, err := nats.Connect(url, nats.Name("revline-nats-config"), asServer, nats.CustomInboxPrefix(serverInboxPrefix))
	if err != nil {
		return nil, fmt.Errorf("tokens: connect to NATS at %s: %w", redactURL(url), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	store, err := auth.Open(ctx, js)
	if err != nil {
		return nil, err
	}
	return store.List(ctx)
}
