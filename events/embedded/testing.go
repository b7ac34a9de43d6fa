package embedded

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StartForTest starts an embedded server on a free loopback port with its
// data in a temporary directory, stopped when the test ends.
func StartForTest(t testing.TB) *server.Server {
	t.Helper()
	srv, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// ConnectForTest connects to srv, closed when the test ends.
func ConnectForTest(t testing.TB, srv *server.Server) (*nats.Conn, jetstream.JetStream) {
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

// StartClusterForTest starts an n-node NATS cluster with JetStream on free
// loopback ports, each node with its own temporary store, and waits until
// the cluster has elected a JetStream meta leader. It is stopped when the
// test ends. A route port taken by someone else between choosing and
// binding it leaves a node unready: the cluster is then started again on
// other ports.
func StartClusterForTest(t testing.TB, n int) []*server.Server {
	t.Helper()
	var err error
	for range 3 {
		var servers []*server.Server
		if servers, err = startCluster(t, n); err == nil {
			t.Cleanup(func() { shutdownAll(servers) })
			return servers
		}
		shutdownAll(servers)
	}
	t.Fatal(err)
	return nil
}

func startCluster(t testing.TB, n int) ([]*server.Server, error) {
	clusterPorts := make([]int, n)
	routes := make([]*url.URL, n)
	for i := range n {
		clusterPorts[i] = freePort(t)
		routes[i] = &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(clusterPorts[i]))}
	}
	var servers []*server.Server
	for i := range n {
		srv, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("node-%d", i),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			NoLog:      true,
			Cluster:    server.ClusterOpts{Name: "revline-test", Host: "127.0.0.1", Port: clusterPorts[i]},
			Routes:     routes,
		})
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
	for !slices.ContainsFunc(servers, func(s *server.Server) bool { return s.JetStreamIsLeader() }) {
		if time.Now().After(deadline) {
			return servers, errors.New("the cluster elected no JetStream meta leader in time")
		}
		time.Sleep(20 * time.Millisecond) // no notification for leadership exists
	}
	return servers, nil
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
