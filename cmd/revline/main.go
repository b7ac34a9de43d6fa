// Command revline is Revline's single binary: `revline serve` runs the
// control plane and the other commands are its client. Run `revline --help`.
package main

import (
	"context"
	"os"

	"github.com/revline/revline/cmd/revline/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
