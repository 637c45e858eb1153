package namespaces_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/znet/znet/namespaces"
)

// A node makes its namespace for a network, works inside it, and on delete
// waits until the kernel has really let it go.
func Example() {
	name := namespaces.Name("node1", "shop")
	if err := namespaces.Create(name); err != nil {
		fmt.Println(err)
		return
	}
	id, err := namespaces.Identify(name)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = namespaces.DoPath(name, func() error {
		// /proc/sys/net shows the namespace of the thread that opens it.
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	})
	if err != nil {
		fmt.Println(err)
	}
	if err := namespaces.Delete(name); err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := namespaces.WaitGone(ctx, id); err != nil {
		pids, _ := namespaces.Holders(id)
		fmt.Println(err, pids)
	}
}
