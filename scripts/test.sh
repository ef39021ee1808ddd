#!/usr/bin/env bash
# README command 2: install what is missing, build, run every test that CI runs.
# Slow benchmark/soak tests carry [Trait("Category", "Slow")] and are excluded here.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/bootstrap.sh
dotnet build Checkpointing.slnx -c Release --nologo -v quiet
results="$repo/artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"
set +e
dotnet test Checkpointing.slnx -c Release --no-build --nologo --filter "Category!=Slow" \
  --logger trx --results-directory "$results" 2>&1 | tee "$repo/artifacts/test.log"
status=${PIPESTATUS[0]}
set -e
# One closing line summed over every test assembly, e.g. "tests: 120 passed, 0 failed".
awk '/^(Passed|Failed)!/ { for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$repo/artifacts/test.log"
exit "$status"
