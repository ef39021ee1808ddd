#!/usr/bin/env bash
# The control-plane rows of README "Benchmarks": runs `ckpt-bench commits` with the given options
# --repeat times (default 3), prints each run's JSON line, then the median commits/s and p99.
# Usage: scripts/bench-commits.sh [--repeat 3] --runs 1000 --ranks 8 --commits 3 --grain-state blob --store blob --silos 2
# Set CKPT_DLL to run another build of ckpt-bench (e.g. an older commit's, for a before/after pair).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
repeat=3
if [[ "${1:-}" == "--repeat" ]]; then repeat="$2"; shift 2; fi
dll="${CKPT_DLL:-}"
if [[ -z "$dll" ]]; then
  bash scripts/bootstrap.sh >/dev/null
  dotnet build src/Silo -c Release --nologo -v quiet >/dev/null
  dotnet build benchmarks/Throughput -c Release --nologo -v quiet >/dev/null
  dll="$repo/benchmarks/Throughput/bin/Release/net10.0/linux-x64/ckpt-bench.dll"
fi
results=()
for ((i = 1; i <= repeat; i++)); do
  line="$(dotnet "$dll" commits "$@" --json 2>/dev/null || true)"
  echo "$line"
  results+=("$line")
done
printf '%s\n' "${results[@]}" | /usr/bin/python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.strip().startswith("{")]
ok = [r for r in rows if "commits_per_s" in r]
if not ok: sys.exit("no run produced a result")
med = lambda k: statistics.median(r[k] for r in ok)
worst = max(r["failed"] for r in ok)
print("median of %d: %.1f commits/s, p50 %.0f ms, p99 %.0f ms, failed %d (worst run)" % (len(ok), med("commits_per_s"), med("p50_ms"), med("p99_ms"), worst))
'
