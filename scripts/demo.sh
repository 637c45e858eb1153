#!/usr/bin/env bash
# demo.sh — what `make demo` runs after `make build`: a lab of simulated
# nodes on this machine (network namespaces, one znetd each), network
# "demo" deployed over them with the last node hidden behind NAT, one
# workload per node, and then pings between every two workloads (IPv4 and
# IPv6), one node's WireGuard device and its `znet status`. It exits non-zero
# if a ping fails. The lab stays up to play with; `make demo-down` removes it.
#
# Needs root. Environment: ZNET_LAB_DIR (default /tmp/znet-lab),
# ZNET_LAB_NODES (default 3), ZNET_LAB_NAME (default none: node ids node1...,
# namespaces lab-*; with a name N: node ids N-n1..., namespaces N-*).
set -euo pipefail

cd "$(dirname "$0")/.."
dir=${ZNET_LAB_DIR:-/tmp/znet-lab}
nodes=${ZNET_LAB_NODES:-3}
name=${ZNET_LAB_NAME:-}
znet=bin/znet

# The lab's naming (see package lab): node ids and workload namespaces.
if [ -n "$name" ]; then
	node_id() { echo "$name-n$1"; }
	prefix=$name-
	name_flag=(--name "$name")
else
	node_id() { echo "node$1"; }
	prefix=lab-
	name_flag=()
fi

if [ "$(id -u)" != 0 ]; then
	echo "demo: needs root (it makes network namespaces)" >&2
	exit 1
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "clean slate: $znet lab down --dir $dir"
"$znet" lab down --dir "$dir"

step "$znet lab up --nodes $nodes --dir $dir ${name_flag[*]}"
"$znet" lab up --nodes "$nodes" --dir "$dir" "${name_flag[@]}"

# The workloads' addresses, as the workloads themselves see them. The lab
# names workload namespaces <prefix>w1, <prefix>w2, ...; the last node is
# hidden when there are 3 nodes or more.
declare -a v4 v6 label
for i in $(seq 1 "$nodes"); do
	ns=${prefix}w$i
	v4[i]=$(ip -n "$ns" -o -4 addr show dev znet0 | awk '{print $4}' | cut -d/ -f1)
	v6[i]=$(ip -n "$ns" -o -6 addr show dev znet0 scope global | awk '{print $4}' | cut -d/ -f1)
	label[i]="w$i ($(node_id "$i"))"
	if [ "$nodes" -ge 3 ] && [ "$i" -eq "$nodes" ]; then
		label[i]="w$i ($(node_id "$i"), hidden)"
	fi
done

# ping_ok NS ADDR: a few tries, so that an address still in duplicate
# address detection right after attach does not count as a failure.
ping_ok() {
	for _ in 1 2 3 4 5; do
		if ip netns exec "$1" ping -c 2 -i 0.2 -W 1 "$2" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.5
	done
	return 1
}

step "every workload pings every other, IPv4 and IPv6"
failed=0
for a in $(seq 1 "$nodes"); do
	for b in $(seq 1 "$nodes"); do
		[ "$a" = "$b" ] && continue
		for addr in "${v4[b]}" "${v6[b]}"; do
			if ping_ok "${prefix}w$a" "$addr"; then
				printf '  ok    %-28s -> %-28s %s\n' "${label[a]}" "${label[b]}" "$addr"
			else
				printf '  FAIL  %-28s -> %-28s %s\n' "${label[a]}" "${label[b]}" "$addr"
				failed=$((failed + 1))
			fi
		done
	done
done

if [ "$nodes" -ge 2 ]; then
	step "ip netns exec ${prefix}w1 ping -c 3 ${v4[2]}"
	ip netns exec "${prefix}w1" ping -c 3 -i 0.2 "${v4[2]}" || failed=$((failed + 1))
fi

node1=$(node_id 1)
socket=$dir/$node1/znetd.sock
# The network's namespace and WireGuard device on node 1, as znetd names them.
status=$("$znet" --socket "$socket" status demo)
netns=$(awk '$1 == "namespace" {print $2}' <<<"$status")
iface=$(awk '$1 == "interface" {print $2}' <<<"$status")
step "$node1's WireGuard device: ip netns exec $netns wg show $iface"
ip netns exec "$netns" wg show "$iface"

step "$znet --socket $socket status demo"
"$znet" --socket "$socket" status demo

echo
if [ "$failed" -gt 0 ]; then
	echo "demo: $failed ping(s) failed; see the znetd logs in $dir/*/znetd.log" >&2
	echo "take it down with: make demo-down (or $znet lab down --dir $dir)"
	exit 1
fi
echo "demo: every workload reached every other across the mesh."
echo "The lab stays up: try the commands above, or '$znet lab status --dir $dir'."
echo "take it down with: make demo-down (or $znet lab down --dir $dir)"
