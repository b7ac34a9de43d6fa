package cli

import (
	"flag"
	"os"

	"github.com/nats-io/nats.go"
)

// natsFlags are how to authenticate to, and trust, a NATS server that is
// not the embedded one: credentials and TLS, each with an environment
// variable so that secrets need not appear on a command line.
type natsFlags struct {
	creds, tlsCA, tlsCert, tlsKey string
}

func (n *natsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&n.creds, "nats-creds", os.Getenv("REVLINE_NATS_CREDS"), "NATS credentials file (env REVLINE_NATS_CREDS)")
	fs.StringVar(&n.tlsCA, "nats-tls-ca", os.Getenv("REVLINE_NATS_TLS_CA"), "CA certificate to verify the NATS server (env REVLINE_NATS_TLS_CA)")
	fs.StringVar(&n.tlsCert, "nats-tls-cert", os.Getenv("REVLINE_NATS_TLS_CERT"), "client certificate for NATS (env REVLINE_NATS_TLS_CERT)")
	fs.StringVar(&n.tlsKey, "nats-tls-key", os.Getenv("REVLINE_NATS_TLS_KEY"), "client key for NATS (env REVLINE_NATS_TLS_KEY)")
}

// options turns the flags into connection options, checking the files
// exist so that a typo is reported as such rather than as a TLS failure.
func (n *natsFlags) options() ([]nats.Option, error) {
	for flagName, path := range map[string]string{"--nats-creds": n.creds, "--nats-tls-ca": n.tlsCA, "--nats-tls-cert": n.tlsCert, "--nats-tls-key": n.tlsKey} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return nil, usagef("%s %s: %v", flagName, path, err)
		}
	}
	if (n.tlsCert == "") != (n.tlsKey == "") {
		return nil, usagef("--nats-tls-cert and --nats-tls-key go together")
	}
	var opts []nats.Option
	if n.creds != "" {
		opts = append(opts, nats.UserCredentials(n.creds))
	}
	if n.tlsCA != "" {
		opts = append(opts, nats.RootCAs(n.tlsCA))
	}
	if n.tlsCert != "" {
		opts = append(opts, nats.ClientCert(n.tlsCert, n.tlsKey))
	}
	return opts, nil
}
