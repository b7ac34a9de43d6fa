package embedded_test

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/revline/revline/events/embedded"
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
