package overlay

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// This file is a UAPI client for userspace data planes whose every
// exchange has a deadline. wgctrl's userspace client dials and reads
// without one, so a data plane that is stopped (SIGSTOP) or wedged held
// `znet status` for as long as it stayed so.

// ErrNotResponding is returned (wrapped) by the userspace backend's Show
// and Configure when the data plane accepts no connection or gives no
// answer before the deadline: it runs but is stopped or wedged.
var ErrNotResponding = errors.New("data plane not responding")

const (
	// showTimeout bounds a read of the device when ctx has no earlier
	// deadline.
	showTimeout = 2 * time.Second
	// configureTimeout bounds a change of the device when ctx has no
	// earlier deadline; a thousand peers take milliseconds.
	configureTimeout = 10 * time.Second
)

// uapiExchange sends req to the UAPI socket at path and hands the answer
// to read, all before ctx's deadline or limit from now, whichever is
// earlier.
func uapiExchange(ctx context.Context, path string, limit time.Duration, req string, read func(*bufio.Reader) error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return uapiErr(err)
	}
	defer func() { _ = c.Close() }()
	dl, _ := ctx.Deadline()
	if err := c.SetDeadline(dl); err != nil {
		return err
	}
	// A cancelled ctx ends the exchange too, not only its deadline.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write([]byte(req)); err != nil {
		return uapiErr(err)
	}
	if err := read(bufio.NewReaderSize(c, 4096)); err != nil {
		return uapiErr(err)
	}
	return nil
}

// uapiErr turns a missing socket into ErrNotFound and a deadline into
// ErrNotResponding.
func uapiErr(err error) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: no answer in time", ErrNotResponding)
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return err
}

// uapiGet reads the device behind the UAPI socket at path (get=1).
func uapiGet(ctx context.Context, path, ifname string) (*wgtypes.Device, error) {
	var dev *wgtypes.Device
	err := uapiExchange(ctx, path, showTimeout, "get=1\n\n", func(r *bufio.Reader) error {
		var err error
		dev, err = parseUAPIDevice(r)
		return err
	})
	if err != nil {
		return nil, err
	}
	dev.Name = ifname
	return dev, nil
}

// uapiSet applies cfg to the device behind the UAPI socket at path (set=1).
func uapiSet(ctx context.Context, path string, cfg wgtypes.Config) error {
	return uapiExchange(ctx, path, configureTimeout, "set=1\n"+uapiConfig(cfg)+"\n", func(r *bufio.Reader) error {
		for {
			line, err := r.ReadString('\n')
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "errno="); ok {
				if v != "0" {
					return fmt.Errorf("device refused the configuration: errno %s", v)
				}
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
}

// uapiConfig renders cfg as the lines of a UAPI set request, as wgctrl
// does.
func uapiConfig(cfg wgtypes.Config) string {
	var b strings.Builder
	if cfg.PrivateKey != nil {
		fmt.Fprintf(&b, "private_key=%s\n", hex.EncodeToString(cfg.PrivateKey[:]))
	}
	if cfg.ListenPort != nil {
		fmt.Fprintf(&b, "listen_port=%d\n", *cfg.ListenPort)
	}
	if cfg.FirewallMark != nil {
		fmt.Fprintf(&b, "fwmark=%d\n", *cfg.FirewallMark)
	}
	if cfg.ReplacePeers {
		b.WriteString("replace_peers=true\n")
	}
	for _, p := range cfg.Peers {
		fmt.Fprintf(&b, "public_key=%s\n", hex.EncodeToString(p.PublicKey[:]))
		if p.Remove {
			b.WriteString("remove=true\n")
		}
		if p.UpdateOnly {
			b.WriteString("update_only=true\n")
		}
		if p.PresharedKey != nil {
			fmt.Fprintf(&b, "preshared_key=%s\n", hex.EncodeToString(p.PresharedKey[:]))
		}
		if p.Endpoint != nil {
			fmt.Fprintf(&b, "endpoint=%s\n", p.Endpoint.String())
		}
		if p.PersistentKeepaliveInterval != nil {
			fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", int(p.PersistentKeepaliveInterval.Seconds()))
		}
		if p.ReplaceAllowedIPs {
			b.WriteString("replace_allowed_ips=true\n")
		}
		for _, ip := range p.AllowedIPs {
			fmt.Fprintf(&b, "allowed_ip=%s\n", ip.String())
		}
	}
	return b.String()
}

// parseUAPIDevice reads the answer to get=1 up to its errno line.
func parseUAPIDevice(r *bufio.Reader) (*wgtypes.Device, error) {
	dev := &wgtypes.Device{Type: wgtypes.Userspace}
	var peer *wgtypes.Peer
	for {
		line, err := r.ReadString('\n')
		line = strings.TrimSpace(line)
		if line != "" {
			key, value, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("bad UAPI line %q", line)
			}
			if key == "errno" {
				if value != "0" {
					return nil, fmt.Errorf("device answered errno %s", value)
				}
				return dev, nil
			}
			if key == "public_key" {
				dev.Peers = append(dev.Peers, wgtypes.Peer{})
				peer = &dev.Peers[len(dev.Peers)-1]
			}
			if err := parseUAPILine(dev, peer, key, value); err != nil {
				return nil, fmt.Errorf("UAPI %s: %w", key, err)
			}
		}
		if err != nil {
			return nil, err
		}
	}
}

// parseUAPILine sets what one key=value line of a get answer says, on the
// device or, after the first public_key, on peer.
func parseUAPILine(dev *wgtypes.Device, peer *wgtypes.Peer, key, value string) error {
	var err error
	if peer == nil {
		switch key {
		case "private_key":
			if dev.PrivateKey, err = hexKey(value); err == nil {
				dev.PublicKey = dev.PrivateKey.PublicKey()
			}
		case "listen_port":
			dev.ListenPort, err = strconv.Atoi(value)
		case "fwmark":
			dev.FirewallMark, err = strconv.Atoi(value)
		}
		return err
	}
	switch key {
	case "public_key":
		peer.PublicKey, err = hexKey(value)
	case "preshared_key":
		peer.PresharedKey, err = hexKey(value)
	case "endpoint":
		peer.Endpoint, err = net.ResolveUDPAddr("udp", value)
	case "last_handshake_time_sec", "last_handshake_time_nsec":
		err = addHandshake(peer, key, value)
	case "tx_bytes":
		peer.TransmitBytes, err = strconv.ParseInt(value, 10, 64)
	case "rx_bytes":
		peer.ReceiveBytes, err = strconv.ParseInt(value, 10, 64)
	case "persistent_keepalive_interval":
		var s int
		s, err = strconv.Atoi(value)
		peer.PersistentKeepaliveInterval = time.Duration(s) * time.Second
	case "allowed_ip":
		var n *net.IPNet
		if _, n, err = net.ParseCIDR(value); err == nil {
			peer.AllowedIPs = append(peer.AllowedIPs, *n)
		}
	case "protocol_version":
		peer.ProtocolVersion, err = strconv.Atoi(value)
	}
	return err
}

// addHandshake adds one half (seconds or nanoseconds) of the last
// handshake's time; both zero mean "never", the zero time.
func addHandshake(peer *wgtypes.Peer, key, value string) error {
	v, err := strconv.ParseInt(value, 10, 64)
	if err != nil || v == 0 {
		return err
	}
	sec, nsec := int64(0), int64(0)
	if !peer.LastHandshakeTime.IsZero() {
		sec, nsec = peer.LastHandshakeTime.Unix(), int64(peer.LastHandshakeTime.Nanosecond())
	}
	if key == "last_handshake_time_sec" {
		sec = v
	} else {
		nsec = v
	}
	peer.LastHandshakeTime = time.Unix(sec, nsec)
	return nil
}

func hexKey(s string) (wgtypes.Key, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return wgtypes.Key{}, err
	}
	return wgtypes.NewKey(b)
}
