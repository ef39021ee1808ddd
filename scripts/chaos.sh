#!/usr/bin/env bash
# A real multi-host cluster under chaos (issue 14): network namespaces on this machine joined by a
# private bridge (Azurite with its data on disk, three silos in cluster mode, the agents), N runs x W
# ranks checkpointing for M minutes while faults strike at seeded times, then the invariant checker.
# Usage (root): scripts/chaos.sh [--minutes 2] [--runs 3] [--ranks 2] [--seed S] [--json]
# Exit code 0 only when every count of trouble is 0. It ends itself after M minutes plus the checks,
# and removes every namespace, link and process it made. Set CKPT_CHAOS_BUILT=1 to skip the build.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
if [[ "$(id -u)" != 0 ]]; then
  echo "scripts/chaos.sh: needs root (it creates network namespaces, a bridge and veth links)" >&2
  exit 1
fi
if [[ "${CKPT_CHAOS_BUILT:-}" != 1 ]]; then
  bash scripts/bootstrap.sh >/dev/null
  dotnet build src/Silo -c Release --nologo -v quiet >/dev/null
  dotnet build tools/Lab -c Release --nologo -v quiet >/dev/null
fi
exec dotnet "$repo/tools/Lab/bin/Release/net10.0/linux-x64/ckpt-lab.dll" chaos "$@"
