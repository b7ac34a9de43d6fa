package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"
)

// ErrPrivateTarget is wrapped by the errors about a webhook target on
// loopback, link-local or private addresses, which serve refuses unless
// started with --webhooks-allow-private.
var ErrPrivateTarget = errors.New("private, loopback and link-local targets are refused (serve --webhooks-allow-private allows them)")

// sharedAddressSpace is carrier-grade NAT (RFC 6598), private too.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// isPrivate reports whether addr is not a public unicast address.
func isPrivate(addr netip.Addr) bool {
	addr = addr.Unmap()
	return addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() ||
		addr.IsInterfaceLocalMulticast() || addr.IsMulticast() || addr.IsUnspecified() || sharedAddressSpace.Contains(addr)
}

// CheckTarget refuses a URL whose host is, or resolves to, a private
// address, unless allowPrivate. Deliveries check again each address they
// connect to, so that a name resolving elsewhere later (DNS rebinding)
// is refused too.
func CheckTarget(ctx context.Context, raw string, allowPrivate bool) error {
	if err := ValidateURL(raw); err != nil {
		return err
	}
	if allowPrivate {
		return nil
	}
	u, _ := url.Parse(raw) // valid: checked above
	host := u.Hostname()
	if addr, err := netip.ParseAddr(host); err == nil {
		if isPrivate(addr) {
			return fmt.Errorf("webhook URL %q: %w", raw, ErrPrivateTarget)
		}
		return nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("webhook URL %q: resolve %s: %w", raw, host, err)
	}
	for _, addr := range addrs {
		if isPrivate(addr) {
			return fmt.Errorf("webhook URL %q: %s resolves to %s: %w", raw, host, addr, ErrPrivateTarget)
		}
	}
	return nil
}

// refusePrivate is a net.Dialer's Control: it sees the address about to
// be connected to, after resolution, and refuses a private one.
func refusePrivate(_, address string, _ syscall.RawConn) error {
	addrPort, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook target %s: %w", address, err)
	}
	if isPrivate(addrPort.Addr()) {
		return fmt.Errorf("webhook target %s: %w", address, ErrPrivateTarget)
	}
	return nil
}
