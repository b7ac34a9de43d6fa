package embedded_test

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/revline/revline/events/embedded"
	"github.com/revline/revline/events/embedded/embeddedtest"
)

// A port someone else holds is reported at once, not after the ready timeout.
func TestStartReportsAPortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv, err := embedded.Start(embedded.Config{DataDir: t.TempDir(), Listen: ln.Addr().String()})
	if err == nil {
		srv.Shutdown()
		t.Fatal("started on a port in use")
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("err = %v, want address already in use", err)
	}
}

// Users.Set changes who may connect while the server runs: a connection
// of a user taken away is closed and cannot come back, a new user
// connects, and JetStream keeps working.
func TestUsersSetClosesTheConnectionsOfRemovedUsers(t *testing.T) {
	t.Parallel()
	alice, bob := newUser(t), newUser(t)
	users := embedded.NewUsers([]*server.NkeyUser{{Nkey: alice.public}})
	srv := embeddedtest.StartWithUsers(t, users)
	closed := make(chan struct{})
	nc, err := nats.Connect(srv.ClientURL(), alice.option, nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nats.Connect(srv.ClientURL(), bob.option); err == nil {
		t.Fatal("a user not yet added connected")
	}

	if _, err := nats.Connect(srv.ClientURL()); err == nil {
		t.Fatal("an anonymous client connected")
	}

	if err := users.Set([]*server.NkeyUser{{Nkey: bob.public}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the removed user's connection is still open")
	}
	if again, err := nats.Connect(srv.ClientURL(), alice.option); err == nil {
		again.Close()
		t.Fatal("a removed user connected again")
	}
	asBob, err := nats.Connect(srv.ClientURL(), bob.option)
	if err != nil {
		t.Fatalf("the added user: %v", err)
	}
	defer asBob.Close()
	js, err := jetstream.New(asBob)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatalf("JetStream after the users changed: %v", err)
	}
}

type user struct {
	public string
	option nats.Option
}

func newUser(t *testing.T) user {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	public, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return user{public: public, option: nats.Nkey(public, kp.Sign)}
}

// Set closes every connection of a removed user, however many: the server
// lists them a page at a time, and closing one takes it off the list.
func TestUsersSetClosesEveryConnectionOfARemovedUser(t *testing.T) {
	t.Parallel()
	alice := newUser(t)
	users := embedded.NewUsers([]*server.NkeyUser{{Nkey: alice.public}})
	srv := embeddedtest.StartWithUsers(t, users)
	const conns = 1100 // more than one page of the server's list (1024)
	for range conns {
		nc, err := nats.Connect(srv.ClientURL(), alice.option, nats.NoReconnect())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
	}
	if n := srv.NumClients(); n != conns {
		t.Fatalf("%d connections open, want %d", n, conns)
	}
	if err := users.Set(nil); err != nil {
		t.Fatal(err)
	}
	connz, err := srv.Connz(&server.ConnzOptions{User: alice.public})
	if err != nil {
		t.Fatal(err)
	}
	if connz.Total != 0 {
		t.Errorf("%d connections of the removed user still open after Set", connz.Total)
	}
}
