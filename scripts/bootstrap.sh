#!/usr/bin/env bash
# Installs everything this repo needs on Debian 12 with the .NET 10 SDK. Idempotent: every step
# checks first and prints what it does, so rerunning it is cheap and safe.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf '[bootstrap] %s\n' "$*"; }
sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_log="${TMPDIR:-/tmp}/checkpointing-bootstrap-apt.log"
apt_updated=0
apt_update_once() {
  if [ "$apt_updated" -eq 0 ]; then
    say "apt-get update"
    sudo_if_needed apt-get update -qq
    apt_updated=1
  fi
}
# apt's per-package chatter goes to a log; it is shown only when the install fails.
apt_install() {
  say "apt-get install $* (log: $apt_log)"
  if ! sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>"$apt_log" 2>&1; then
    tail -n 40 "$apt_log"
    say "ERROR: apt-get install $* failed"
    exit 1
  fi
}

has_glibcxx_3_4_32() {
  local lib
  lib="$(/sbin/ldconfig -p | awk '/libstdc\+\+\.so\.6 .*x86-64/ {print $NF; exit}')"
  [ -n "$lib" ] && grep -aq 'GLIBCXX_3\.4\.32' "$lib"
}

# 1. TorchSharp 0.107's native library needs GLIBCXX_3.4.32 (GCC 13+ runtime). Debian 12 ships
#    GCC 12's, so take libstdc++6 (and only what it needs) from trixie behind a low-priority pin.
if has_glibcxx_3_4_32; then
  say "libstdc++ already provides GLIBCXX_3.4.32"
else
  say "libstdc++ lacks GLIBCXX_3.4.32: installing libstdc++6 from Debian trixie (pin priority 100)"
  src=/etc/apt/sources.list.d/trixie.sources
  if [ ! -f "$src" ]; then
    say "adding $src"
    sudo_if_needed tee "$src" >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  pin=/etc/apt/preferences.d/trixie-low-priority
  if [ ! -f "$pin" ]; then
    say "adding $pin (trixie never wins unless asked for)"
    sudo_if_needed tee "$pin" >/dev/null <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
  fi
  apt_updated=0
  apt_update_once
  apt_install -t trixie --no-install-recommends libstdc++6
  has_glibcxx_3_4_32 || { say "ERROR: GLIBCXX_3.4.32 still missing after installing libstdc++6"; exit 1; }
fi

# 2. Real PyTorch and numpy for the interop tests, always run as /usr/bin/python3.
if /usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1; then
  say "/usr/bin/python3 already has torch and numpy"
else
  say "installing python3-torch and python3-numpy from Debian"
  apt_update_once
  apt_install --no-install-recommends python3-torch python3-numpy
fi

# strace: a durability test checks that each rename is followed by an fsync of its folder.
if ! command -v strace >/dev/null 2>&1; then
  say "installing strace"
  apt_update_once
  apt_install --no-install-recommends strace
fi

# iproute2 (ip, tc): the chaos lab's network namespaces, bridge, veth links and slow links.
if ! command -v ip >/dev/null 2>&1 || ! command -v tc >/dev/null 2>&1; then
  say "installing iproute2"
  apt_update_once
  apt_install --no-install-recommends iproute2
fi

# A real browser for the dashboard tests: Playwright drives Debian's chromium (its own browser download is not reachable).
if ! command -v chromium >/dev/null 2>&1; then
  say "installing chromium"
  apt_update_once
  apt_install --no-install-recommends chromium
fi

# Containers for the silo image test: podman with the runc runtime (crun fails on this kernel's cgroup mode), and
# debootstrap to make the image's Debian base (no container registry is reachable).
if ! command -v podman >/dev/null 2>&1 || [ ! -x /usr/sbin/runc ] || ! command -v debootstrap >/dev/null 2>&1; then
  say "installing podman, runc and debootstrap"
  apt_update_once
  apt_install podman runc debootstrap
fi

# 3. Azurite, pinned by package-lock.json, installed into the repo's node_modules.
if ! command -v npm >/dev/null 2>&1; then
  say "installing nodejs and npm from Debian"
  apt_update_once
  apt_install --no-install-recommends nodejs npm
fi
stamp="$repo/node_modules/.package-lock.json"
if [ -x "$repo/node_modules/.bin/azurite" ] && [ "$stamp" -nt "$repo/package-lock.json" ]; then
  say "azurite already installed ($("$repo/node_modules/.bin/azurite" --version))"
else
  say "npm ci (azurite and the manifest validators, pinned in package-lock.json)"
  (cd "$repo" && npm ci --no-audit --no-fund --loglevel=error)
fi

# 4. NuGet packages for the whole solution.
say "dotnet restore"
(cd "$repo" && dotnet restore Checkpointing.slnx --verbosity quiet)
say "done"
