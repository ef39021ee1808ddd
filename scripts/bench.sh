#!/usr/bin/env bash
# The data-plane tables of README "Benchmarks": `ckpt-bench io`, every row a ratio against a reference
# measured in the same run and interleaved with it (FileStream+fsync, dd, torch.save/torch.load via
# /usr/bin/python3, memcpy, the raw Azure SDK on the same Azurite).
# Usage:
#   scripts/bench.sh [--size-mib 1024] [--repeat 3] [...]   every row at one size (extra args go to ckpt-bench io)
#   scripts/bench.sh --growth [--repeat 3]                  64 MiB -> 4 GiB: local rows, seconds and peak RSS per size
#   scripts/bench.sh --shards [--size-mib 1024]             local and blob saves with 1, 2 and 4 shards
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/bootstrap.sh >&2
dotnet build benchmarks/Throughput -c Release --nologo -v quiet >&2
bench=(dotnet "$repo/benchmarks/Throughput/bin/Release/net10.0/linux-x64/ckpt-bench.dll")

mode=table
if [[ "${1:-}" == --growth || "${1:-}" == --shards ]]; then mode="${1#--}"; shift; fi

# One markdown row per measurement, from the --json objects on stdin.
table() {
  /usr/bin/python3 -c "$(cat <<'PY'
import json, sys
def sec(x): return f"{x:.3f}".rstrip("0").rstrip(".") if x >= 0.001 else f"{x:.6f}".rstrip("0")
print("| size MiB | shards | row | ours median s (min) | reference | reference median s (min) | ratio | pair ratio | peak RSS save / load MiB |")
print("|---|---|---|---|---|---|---|---|---|")
for line in sys.stdin:
    s = json.loads(line)
    for r in s["rows"]:
        print(f"| {s['size_mib']} | {s['shards']} | {r['name']} | {sec(r['ours_median_s'])} ({sec(r['ours_min_s'])}) | {r['reference']} "
              f"| {sec(r['reference_median_s'])} ({sec(r['reference_min_s'])}) | {r['ratio']} | {r['pair_ratio_median']} "
              f"| {s['peak_rss_save_mib']:.0f} / {s['peak_rss_load_mib']:.0f} |")
PY
)"
}

case "$mode" in
  table)
    exec "${bench[@]}" io "$@" ;;
  growth)
    for size in 64 256 1024 4096; do
      "${bench[@]}" io --size-mib "$size" --rows local_save_vs_filestream,load_cold_vs_torch_load,load_warm_vs_torch_load,async_stall_vs_memcpy --json "$@"
    done | table ;;
  shards)
    for shards in 1 2 4; do
      "${bench[@]}" io --shards "$shards" --rows local_save_vs_filestream,blob_save_vs_sdk --json "$@"
    done | table ;;
esac
