package zos_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/znet/znet/spec"
	"github.com/znet/znet/zos"
)

// FuzzTranslate feeds Decode and Translate arbitrary documents, seeded with
// the fixtures. Invariants: every refusal is a *spec.FieldError; what is
// accepted is a valid spec for the node whose own entry carries the key's
// public half and its link address; no message carries the private key.
func FuzzTranslate(f *testing.F) {
	for _, name := range []string{"access", "public", "hidden", "hostbits", "alone"} {
		f.Add(fixture(f, name))
	}
	f.Add([]byte(`{"version":0,"name":"x","type":"network","data":{}}`)) // every data field missing
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := zos.Decode(data)
		if err != nil {
			checkRefusal(t, err, "")
			return
		}
		p, err := zos.Translate(42, w, "node-a")
		if err != nil {
			checkRefusal(t, err, string(w.Data.WireguardPrivateKey))
			return
		}
		if err := p.Spec.Validate("node-a"); err != nil {
			t.Fatalf("accepted a workload whose spec is invalid: %v", err)
		}
		self, _ := p.Spec.Node("node-a")
		if self.PublicKey != p.PrivateKey.PublicKey().String() {
			t.Fatalf("own entry has key %s, not the private key's", self.PublicKey)
		}
		if self.LinkAddress != zos.LinkAddress(self.Subnet) || !spec.LinkRange.Contains(self.LinkAddress) {
			t.Fatalf("own link address %s for subnet %s", self.LinkAddress, self.Subnet)
		}
	})
}

func checkRefusal(t *testing.T, err error, key string) {
	t.Helper()
	var fe *spec.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("refusal %v is not a field error", err)
	}
	if len(key) >= 8 && strings.Contains(err.Error(), key) {
		t.Fatalf("refusal carries the private key: %v", err)
	}
}
