package embedded

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Users are the nkey users an embedded server accepts, each with its
// permissions (nil allows everything), changed while it runs by Set.
// They authenticate every client connection (the server's custom
// authentication): a client proves it holds its user's key by signing
// the server's nonce, as with nkey users in a configuration file.
//
// Changing them needs no reload of the server's configuration, which
// would close every connection whose handshake it overtakes.
type Users struct {
	mu sync.Mutex
	// byKey are the users, by public key.
	byKey map[string]*server.NkeyUser
	// srv is the server the users are given to, once started.
	srv *server.Server
}

// NewUsers returns the set of users users.
func NewUsers(users []*server.NkeyUser) *Users {
	return &Users{byKey: index(users)}
}

func index(users []*server.NkeyUser) map[string]*server.NkeyUser {
	byKey := make(map[string]*server.NkeyUser, len(users))
	for _, user := range users {
		byKey[user.Nkey] = user
	}
	return byKey
}

// connzPage is how many connections Set asks the server for at a time.
const connzPage = 1024

// Set makes users the only ones accepted from now on. The connections of
// a user that is gone, or whose permissions changed, are closed: a client
// whose user remains reconnects with its new permissions, the others
// cannot. When Set returns, no connection of a removed user is open, and
// none can be opened.
func (u *Users) Set(users []*server.NkeyUser) error {
	next := index(users)
	u.mu.Lock()
	var gone []string
	for key, old := range u.byKey {
		if user, ok := next[key]; !ok || !reflect.DeepEqual(user.Permissions, old.Permissions) {
			gone = append(gone, key)
		}
	}
	u.byKey = next
	srv := u.srv
	u.mu.Unlock()
	if srv == nil {
		return nil
	}
	// From here on Check refuses those users. A client of theirs that
	// passed Check before has sent its key with CONNECT, which is what
	// Connz filters on: none is missed. Closing a connection takes it off
	// the server's list at once, so the first page is asked for again
	// until it is empty: paging on would skip as many as were closed.
	for _, key := range gone {
		for {
			connz, err := srv.Connz(&server.ConnzOptions{User: key, Limit: connzPage})
			if err != nil {
				return fmt.Errorf("embedded nats: connections of a removed user: %w", err)
			}
			if len(connz.Conns) == 0 {
				break
			}
			for _, conn := range connz.Conns {
				_ = srv.DisconnectClientByID(conn.Cid) // closed meanwhile: nothing to do
			}
		}
	}
	return nil
}

// Check implements server.Authentication: the client must name a user and
// sign the server's nonce with its key.
func (u *Users) Check(c server.ClientAuthentication) bool {
	opts := c.GetOpts()
	if c.Kind() != server.CLIENT || opts == nil || opts.Nkey == "" {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(opts.Sig)
	if err != nil {
		if sig, err = base64.StdEncoding.DecodeString(opts.Sig); err != nil {
			return false
		}
	}
	pub, err := nkeys.FromPublicKey(opts.Nkey)
	if err != nil || pub.Verify(c.GetNonce(), sig) != nil {
		return false
	}
	u.mu.Lock()
	user, ok := u.byKey[opts.Nkey]
	u.mu.Unlock()
	if !ok {
		return false
	}
	c.RegisterUser(&server.User{Username: opts.Nkey, Permissions: user.Permissions})
	return true
}

func (u *Users) bind(srv *server.Server) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.srv = srv
}
