#!/usr/bin/env bash
# Installs everything anyedge needs on a fresh Debian 12 machine with Node 20, as root:
# the system packages its data plane and tests use, the npm dependencies, and the BPF objects.
# Safe to run again: every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # packet tools used as independent decoders and as real peers in tests
  tshark python3-scapy tcpdump iputils-ping hping3 iperf3
  # the data plane: netns, veth, routes and rules, nftables
  iproute2 nftables ethtool
  # the DoS benchmark's comparison (bench/dos-drop.bench.ts): iptables raw, legacy and nft
  iptables
  # eBPF build and loading
  clang llvm libbpf-dev bpftool libc6-dev gcc-multilib
  # distributed config store and BGP for the lab
  etcd-server etcd-client bird2
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# BPF programs and maps are pinned under bpffs; systemd mounts it on most machines, a bare VM may not.
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

npm ci --no-audit --no-fund
npm run build:bpf
