// Package access writes and reads the wg-quick configurations that let a
// person's device join a network as an access peer.
//
// FromGrant turns the daemon's api.AccessGrant (and, when the CLI made the key
// pair, the private key) into a Config; Render writes it in the layout of
// DESIGN.md, Parse reads such a file back as strictly as wg-quick and wg
// would (errors name the line), and QR draws the text as a QR code in a
// terminal for the phone apps. Every Config that Validate accepts survives
// Parse(Render(c)) unchanged.
//
// The package does no networking and keeps no state: it never makes or
// stores keys, never talks to the daemon and never runs wg-quick. It knows
// only the keys a znet access config uses (PrivateKey, Address, DNS, MTU in
// [Interface]; PublicKey, Endpoint, AllowedIPs, PersistentKeepalive in one
// [Peer]); Parse refuses the others (ListenPort, PresharedKey, PostUp, ...)
// rather than dropping them.
package access
