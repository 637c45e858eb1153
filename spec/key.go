package spec

import (
	"encoding/base64"
	"errors"
	"fmt"
)

// ErrKeyNotCanonical is CheckKey's error for a key that decodes to 32
// bytes but is not written as wg writes it (wg refuses it); a caller may
// suggest the canonical form.
var ErrKeyNotCanonical = errors.New("is not in canonical base64 (wg refuses it)")

// CheckKey accepts a WireGuard key as wg writes it: standard, padded,
// canonical base64 of exactly 32 bytes. Its errors never repeat the key,
// which may be a private one. It is the one check of a key: spec, access,
// zos and the daemon use it.
func CheckKey(key string) error {
	if len(key) == keyLen {
		// Without allocating: every member's key is checked at every apply.
		// A strict decode refuses padding bits that are set, so 32 bytes
		// from 44 characters (no newline skipped) are the canonical form,
		// without encoding them back (a tenth of Validate's time).
		var src [keyLen]byte
		var dst [33]byte // base64.StdEncoding.DecodedLen(keyLen)
		copy(src[:], key)
		if n, err := strictBase64.Decode(dst[:], src[:]); err == nil && n == 32 {
			return nil
		}
	}
	return checkKeySlowly(key)
}

// strictBase64 is the standard, padded encoding that refuses set padding
// bits.
var strictBase64 = base64.StdEncoding.Strict()

// keyLen is the length of a canonical base64 WireGuard key.
const keyLen = 44

// checkKeySlowly is CheckKey for any string, naming what is wrong.
func checkKeySlowly(key string) error {
	b, err := base64.StdEncoding.DecodeString(key)
	switch {
	case err != nil:
		return errors.New("is not a base64 WireGuard key of 32 bytes")
	case len(b) != 32:
		return fmt.Errorf("is not a base64 WireGuard key of 32 bytes (it decodes to %d bytes, want 32)", len(b))
	case base64.StdEncoding.EncodeToString(b) != key:
		return ErrKeyNotCanonical
	}
	return nil
}
