package cli

import (
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/revline/revline/events"
	"github.com/spf13/pflag"
)

// natsFlags are how to authenticate to, and trust, a NATS server:
// credentials or an nkey and TLS, each with an environment variable so that
// secrets need not appear on a command line.
type natsFlags struct {
	creds, nkey, tlsCA, tlsCert, tlsKey string
	// localIdentity: without credentials, an nkey or a token, a client
	// talking to a NATS server on this machine acts as the admin token
	// that a local `revline serve` made in its data directory (signer).
	localIdentity bool
}

func (n *natsFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&n.creds, "nats-creds", os.Getenv("REVLINE_NATS_CREDS"), "NATS credentials file (env REVLINE_NATS_CREDS)")
	fs.StringVar(&n.nkey, "nats-nkey", os.Getenv("REVLINE_NATS_NKEY"), "NATS nkey seed file, for a NATS of your own (env REVLINE_NATS_NKEY); by default a client connects as its token")
	fs.StringVar(&n.tlsCA, "nats-tls-ca", os.Getenv("REVLINE_NATS_TLS_CA"), "CA certificate to verify the NATS server (env REVLINE_NATS_TLS_CA)")
	fs.StringVar(&n.tlsCert, "nats-tls-cert", os.Getenv("REVLINE_NATS_TLS_CERT"), "client certificate for NATS (env REVLINE_NATS_TLS_CERT)")
	fs.StringVar(&n.tlsKey, "nats-tls-key", os.Getenv("REVLINE_NATS_TLS_KEY"), "client key for NATS (env REVLINE_NATS_TLS_KEY)")
}

// options turns the flags into connection options for urls, checking the
// files exist so that a typo is reported as such rather than as a TLS
// failure. Without credentials or an nkey, a client with a token (signer)
// connects as the token: asToken are the options that say so
// (events.Signer.NATSOptions), none otherwise.
func (n *natsFlags) options(signer *events.Signer) (opts, asToken []nats.Option, err error) {
	for flagName, path := range map[string]string{"--nats-creds": n.creds, "--nats-nkey": n.nkey, "--nats-tls-ca": n.tlsCA, "--nats-tls-cert": n.tlsCert, "--nats-tls-key": n.tlsKey} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return nil, nil, usagef("%s %s: %v", flagName, path, err)
		}
	}
	if (n.tlsCert == "") != (n.tlsKey == "") {
		return nil, nil, usagef("--nats-tls-cert and --nats-tls-key go together")
	}
	if n.creds != "" && n.nkey != "" {
		return nil, nil, usagef("--nats-creds and --nats-nkey are two ways to authenticate: give one")
	}
	if n.creds != "" {
		opts = append(opts, nats.UserCredentials(n.creds))
	}
	if n.nkey != "" {
		opt, err := nats.NkeyOptionFromSeed(n.nkey)
		if err != nil {
			return nil, nil, usagef("--nats-nkey %s: %v", n.nkey, err)
		}
		opts = append(opts, opt)
	}
	if n.tlsCA != "" {
		opts = append(opts, nats.RootCAs(n.tlsCA))
	}
	if n.tlsCert != "" {
		opts = append(opts, nats.ClientCert(n.tlsCert, n.tlsKey))
	}
	if n.creds == "" && n.nkey == "" && signer != nil {
		if asToken, err = signer.NATSOptions(); err != nil {
			return nil, nil, err
		}
	}
	return opts, asToken, nil
}

// loopbackOnly reports whether every server of a NATS URL list is on this
// machine.
func loopbackOnly(urls string) bool {
	for _, raw := range strings.Split(urls, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil {
			return false
		}
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return true
}
