// Package embeddedtest starts in-process NATS servers and clusters for
// tests. Only tests import it: it is never linked into the revline binary.
package embeddedtest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/revline/revline/events/embedded"
)

// Start starts an embedded server on a free loopback port with its
// data in a temporary directory, stopped when the test ends.
func Start(t testing.TB) *server.Server {
	t.Helper()
	return StartWithUsers(t, nil)
}

// StartWithUsers is Start with the only identities the server accepts,
// users (nil: anyone).
func StartWithUsers(t testing.TB, users *embedded.Users) *server.Server {
	t.Helper()
	srv, err := embedded.Start(embedded.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// Connect connects to srv, closed when the test ends.
func Connect(t testing.TB, srv *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// StartCluster starts an n-node NATS cluster with JetStream on free
// loopback ports, each node with its own temporary store, and waits until
// the cluster can place an asset with n replicas (see clusterUnready). It is
// stopped when the test ends. A route port taken by someone else between
// choosing and binding it leaves a node unready: the cluster is then started
// again on other ports.
func StartCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	return StartClusterWith(t, n, nil)
}

// StartClusterWith is StartCluster with each node's options passed to
// configure (if not nil) before the node starts: users and permissions,
// say.
func StartClusterWith(t testing.TB, n int, configure func(*server.Options)) []*server.Server {
	t.Helper()
	var err error
	for range 3 {
		var servers []*server.Server
		if servers, err = startCluster(t, n, configure); err == nil {
			t.Cleanup(func() { shutdownAll(servers) })
			return servers
		}
		shutdownAll(servers)
	}
	t.Fatal(err)
	return nil
}

func startCluster(t testing.TB, n int, configure func(*server.Options)) ([]*server.Server, error) {
	clusterPorts := make([]int, n)
	routes := make([]*url.URL, n)
	for i := range n {
		clusterPorts[i] = freePort(t)
		routes[i] = &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(clusterPorts[i]))}
	}
	var servers []*server.Server
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("node-%d", i),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			NoLog:      true,
			Cluster:    server.ClusterOpts{Name: "revline-test", Host: "127.0.0.1", Port: clusterPorts[i]},
			Routes:     routes,
		}
		if configure != nil {
			configure(opts)
		}
		srv, err := server.NewServer(opts)
		if err != nil {
			return servers, err
		}
		go srv.Start()
		servers = append(servers, srv)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, srv := range servers {
		if !srv.ReadyForConnections(time.Until(deadline)) {
			return servers, fmt.Errorf("cluster node %s not ready", srv.Name())
		}
	}
	// nats-server tells an embedding program of none of the events this
	// waits for (routes, meta elections, peers' statsz, Raft catch-up), so
	// the condition is polled.
	for {
		why := clusterUnready(servers)
		if why == "" {
			return servers, nil
		}
		if time.Now().After(deadline) {
			return servers, fmt.Errorf("the cluster was not ready for R%d placement in time: %s", n, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clusterUnready says why the cluster could not yet place an asset with one
// replica on every node, or "" when it could. A meta leader alone is not
// enough: it places only on peers of its Raft group from which it has had
// JetStream statsz and that it does not consider offline ("no suitable peers
// for placement, peer offline" otherwise). So the cluster is ready when
//   - every node has routes to all the others;
//   - exactly one node is the JetStream meta leader, and every node's meta
//     group names that node as leader;
//   - every other node's meta group is current with the leader
//     (JetStreamIsCurrent);
//   - the leader's meta group has all n peers, and it sees every other one
//     online, current and not pending (Jsz: Meta.Replicas);
//   - the leader has JetStream statsz from all n nodes and marks none
//     offline (JetStreamClusterPeers, which filters as placement does).
func clusterUnready(servers []*server.Server) string {
	n := len(servers)
	for _, s := range servers {
		if got := s.NumRemotes(); got != n-1 {
			return fmt.Sprintf("%s has routes to %d of the %d other nodes", s.Name(), got, n-1)
		}
	}
	var leader *server.Server
	for _, s := range servers {
		if s.JetStreamIsLeader() {
			if leader != nil {
				return fmt.Sprintf("both %s and %s claim the meta leadership", leader.Name(), s.Name())
			}
			leader = s
		}
	}
	if leader == nil {
		return "no JetStream meta leader"
	}
	var leaderMeta *server.MetaClusterInfo
	for _, s := range servers {
		jsz, err := s.Jsz(nil)
		if err != nil {
			return fmt.Sprintf("%s: jsz: %v", s.Name(), err)
		}
		if jsz.Meta == nil {
			return fmt.Sprintf("%s has no meta group yet", s.Name())
		}
		if jsz.Meta.Leader != leader.Name() {
			return fmt.Sprintf("%s sees %q as meta leader, not %s", s.Name(), jsz.Meta.Leader, leader.Name())
		}
		if s == leader {
			leaderMeta = jsz.Meta
		} else if !s.JetStreamIsCurrent() {
			return fmt.Sprintf("%s's meta group is not current with the leader", s.Name())
		}
	}
	if leaderMeta.Size != n {
		return fmt.Sprintf("the meta group has size %d, not %d", leaderMeta.Size, n)
	}
	if len(leaderMeta.Replicas) != n-1 {
		return fmt.Sprintf("the meta leader %s knows %d followers, not %d", leader.Name(), len(leaderMeta.Replicas), n-1)
	}
	for _, r := range leaderMeta.Replicas {
		if r.Offline || !r.Current || r.Pending {
			return fmt.Sprintf("the meta leader %s sees %s (peer %s) offline=%t current=%t pending=%t",
				leader.Name(), r.Name, r.Peer, r.Offline, r.Current, r.Pending)
		}
	}
	if peers := leader.JetStreamClusterPeers(); len(peers) != n {
		return fmt.Sprintf("the meta leader %s can place on %v only", leader.Name(), peers)
	}
	return ""
}

func shutdownAll(servers []*server.Server) {
	for _, srv := range servers {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// ClusterURL is a client URL listing every node of a cluster.
func ClusterURL(servers []*server.Server) string {
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.ClientURL()
	}
	return strings.Join(urls, ",")
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
