// Package tap makes and opens the persistent tap devices that are VMs'
// NICs on a network: Create makes one inside a namespace, Open attaches to
// its queues from inside that namespace (the file descriptors then work
// from any namespace, which is how a VM monitor outside it gets them), and
// MAC derives the stable, locally administered address of a workload.
//
// It leaves the device's place on the bridge, its MTU and its MAC to the
// caller (plain netlink on the namespace), and all thread switching to the
// namespaces package.
package tap
