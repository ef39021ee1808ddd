#!/usr/bin/env bash
# Prints the benchmark table of README "Benchmarks": every row is a ratio against a reference
# measured in the same run (dd, torch.save/torch.load, raw Azure SDK calls, synchronous save).
# Usage: scripts/bench.sh [--size-mib 1024]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/bootstrap.sh
dotnet build benchmarks/BenchmarkDotNet -c Release --nologo -v quiet
exec dotnet benchmarks/BenchmarkDotNet/bin/Release/net10.0/linux-x64/Checkpointing.Benchmarks.dll table "$@"
