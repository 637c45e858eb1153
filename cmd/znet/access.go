package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/access"
	"github.com/znet/znet/api"
)

func accessCommands() []*command {
	return []*command{
		{
			words: []string{"access", "add"}, args: "NETWORK NAME [--public-key KEY] [--endpoint HOST[:PORT]] [--qr]", min: 2, max: 2,
			summary: "let a device join a network; prints its wg-quick config",
			setup: func(fs *flag.FlagSet) runFunc {
				publicKey := fs.String("public-key", "", "the device's public `KEY`; the config then has no PrivateKey (default: make a key pair here, print the private key once, store it nowhere)")
				endpoint := fs.String("endpoint", "", "`HOST[:PORT]` the device connects to (default: this node's endpoint in the spec; the port defaults to its port)")
				qr := fs.Bool("qr", false, "print the config as a QR code too, for the WireGuard phone apps")
				return func(ctx context.Context, a *app, args []string) error {
					self := lookup([]string{"access", "add"})
					if *qr && a.g.json {
						return usagef(self, "--qr and --json do not go together")
					}
					if *endpoint != "" {
						if err := access.CheckEndpoint(*endpoint); err != nil {
							return usagef(self, "--endpoint: %v", err)
						}
					}
					return accessAdd(ctx, a, args[0], args[1], *publicKey, *endpoint, *qr)
				}
			},
		},
		{
			words: []string{"access", "remove"}, args: "NETWORK NAME", min: 2, max: 2,
			summary: "cut a device off at once and free its addresses",
			setup:   func(*flag.FlagSet) runFunc { return accessRemove },
		},
		{
			words: []string{"access", "list"}, args: "NETWORK", min: 1, max: 1,
			summary: "list a network's access peers on this node",
			setup:   func(*flag.FlagSet) runFunc { return accessList },
		},
	}
}

// accessGrantJSON is what `access add --json` prints.
type accessGrantJSON struct {
	Grant  api.AccessGrant `json:"grant"`
	Config string          `json:"config"`
}

// accessAdd asks the daemon to let the device in and prints its config.
// Without publicKey it makes the key pair and sends only the public key.
func accessAdd(ctx context.Context, a *app, network, name, publicKey, endpoint string, qr bool) error {
	var privateKey string
	if publicKey == "" {
		key, err := wgtypes.GeneratePrivateKey()
		if err != nil {
			return fmt.Errorf("making a key pair: %w", err)
		}
		privateKey, publicKey = key.String(), key.PublicKey().String()
	}
	c := a.client()
	grant, err := c.AddAccess(ctx, network, api.AccessRequest{Name: name, PublicKey: publicKey})
	if err != nil {
		return err
	}
	cfg, err := access.FromGrant(grant, privateKey, endpoint)
	if err != nil {
		// Nobody could use the peer: take it away again.
		if rerr := c.RemoveAccess(ctx, network, name); rerr != nil {
			return fmt.Errorf("%w (and removing access peer %s again failed: %w)", err, name, rerr)
		}
		return fmt.Errorf("%w (access peer %s removed again)", err, name)
	}
	text := cfg.Render()
	if a.g.json {
		return printJSON(a.stdout, accessGrantJSON{Grant: grant, Config: text})
	}
	if _, err := io.WriteString(a.stdout, text); err != nil {
		return err
	}
	if qr {
		if _, err := io.WriteString(a.stdout, "\n"); err != nil {
			return err
		}
		if err := access.QR(a.stdout, text); err != nil {
			return err
		}
	}
	if privateKey != "" {
		_, _ = fmt.Fprintf(a.stderr, "znet: access peer %s added to %s as %s; the private key in this config is stored nowhere else\n",
			name, network, joinValid(grant.IPv4, grant.IPv6))
	}
	return nil
}

func accessRemove(ctx context.Context, a *app, args []string) error {
	if err := a.client().RemoveAccess(ctx, args[0], args[1]); err != nil {
		return err
	}
	if a.g.json {
		return nil
	}
	_, err := fmt.Fprintf(a.stdout, "access peer %s removed from %s\n", args[1], args[0])
	return err
}

func accessList(ctx context.Context, a *app, args []string) error {
	list, err := a.client().AccessPeers(ctx, args[0])
	if err != nil {
		return err
	}
	if list == nil {
		list = []api.AccessPeer{}
	}
	return a.output(list, func(w io.Writer) error {
		tw := newTable(w)
		_, _ = fmt.Fprintln(tw, "NAME\tIPV4\tIPV6\tPUBLIC KEY")
		for _, p := range list {
			_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, addrText(p.IPv4), addrText(p.IPv6), p.PublicKey)
		}
		return tw.Flush()
	})
}
