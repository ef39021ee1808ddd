#!/usr/bin/env bash
# The peers of `ckpt-bench io`: PyTorch 2.x (torch.save/torch.load, mmap loads, torch.distributed.checkpoint) and the official
# safetensors reader, from Debian trixie in a chroot, because Debian 12's python3-torch (1.13) has neither DCP nor safetensors.
# Builds the chroot once with debootstrap (about 6 minutes and 1 GB from the Debian mirror); later runs only check it.
# Usage: scripts/peers.sh [--root DIR]   (default /var/lib/ckpt-peers; needs root). Prints the versions found.
# ckpt-bench io uses the chroot when DIR/usr/bin/python3 imports torch and safetensors there, and says so when it does not.
set -euo pipefail
root=/var/lib/ckpt-peers
if [[ "${1:-}" == --root ]]; then root="$2"; shift 2; fi
say() { echo "peers: $*" >&2; }
[[ $(id -u) -eq 0 ]] || { say "needs root (debootstrap and chroot)"; exit 1; }
stamp="$root/.ckpt-peers-ready"
probe='import torch, safetensors, numpy, torch.distributed.checkpoint; print(f"torch {torch.__version__}, safetensors {safetensors.__version__}, numpy {numpy.__version__}")'
if [[ -f "$stamp" ]] && chroot "$root" /usr/bin/python3 -c "$probe" >/dev/null 2>&1; then
  say "ready in $root: $(chroot "$root" /usr/bin/python3 -c "$probe")"
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  say "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2
fi
if [[ -e "$root" ]]; then say "$root exists but is not a finished peers' chroot (no $stamp): remove it, or give --root another folder"; exit 1; fi
# Built beside its final place and moved there when it works: an interrupted build never looks like a chroot (a rerun starts it over).
building="$root.building"
rm -rf "$building"
say "building a Debian trixie chroot in $root with python3-torch, python3-safetensors, python3-numpy (debootstrap)"
mkdir -p "$building"
debootstrap --variant=minbase --include=python3-torch,python3-safetensors,python3-numpy trixie "$building" http://deb.debian.org/debian >&2
chroot "$building" /usr/bin/python3 -c "$probe" >&2 || { say "the chroot was built but its python cannot import the peers"; exit 1; }
touch "$building/.ckpt-peers-ready"
mv "$building" "$root"
say "ready in $root: $(chroot "$root" /usr/bin/python3 -c "$probe")"
