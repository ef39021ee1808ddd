#!/usr/bin/env bash
# On a machine with one NVIDIA GPU (driver installed, `nvidia-smi` working) and a NuGet feed that
# serves TorchSharp-cuda-linux: builds the agent against TorchSharp's CUDA runtime, runs the GPU
# tests (none may be skipped there) and a GPU save/load benchmark. Takes a few minutes.
# Usage: scripts/gpu-check.sh [--size-mib 1024]
# No .NET SDK or no such feed on the GPU machine: scripts/gpu-bundle.sh and scripts/gpu-bundle-run.sh.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
size=1024
if [[ "${1:-}" == --size-mib ]]; then size="$2"; fi
if ! nvidia-smi -L >&2; then
  echo "gpu-check: no NVIDIA GPU visible (nvidia-smi -L failed); run this on a machine with one" >&2
  exit 1
fi
bash scripts/bootstrap.sh >&2
# A separate artifacts folder keeps the CPU build (and its libtorch) untouched.
cuda=(-c Release -p:TorchRuntime=cuda --artifacts-path "$repo/artifacts/gpu" --nologo -v quiet)
dotnet build tests/Core.Tests "${cuda[@]}"
dotnet build benchmarks/Throughput "${cuda[@]}"
results="$repo/artifacts/gpu/test-results"
rm -rf "$results"
dotnet test tests/Core.Tests "${cuda[@]}" --no-build --filter "Category=Gpu" --logger "trx;LogFileName=gpu.trx" --results-directory "$results"
skipped=$(grep -o 'outcome="NotExecuted"' "$results/gpu.trx" | wc -l)
if (( skipped > 0 )); then
  echo "gpu-check: $skipped GPU test(s) were skipped although a GPU is present (is the CUDA runtime loading? see $results/gpu.trx)" >&2
  exit 1
fi
bench=$(find "$repo/artifacts/gpu/bin" -name ckpt-bench.dll | head -1)
dotnet "$bench" io --device cuda --size-mib "$size" --repeat 3 \
  --rows local_save_vs_filestream,load_warm_vs_torch_load,async_stall_vs_memcpy
