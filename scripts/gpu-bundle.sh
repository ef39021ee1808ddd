#!/usr/bin/env bash
# Packs what the GPU check needs into one archive for a GPU machine that has a CUDA PyTorch but no
# .NET SDK and no NuGet feed serving TorchSharp-cuda-linux: the .NET runtime, ckpt-bench, and gpu-check
# (the runner for the Category=Gpu tests). libtorch is left out: on the GPU machine TorchSharp's
# binding (libLibTorchSharp.so) loads the CUDA libtorch that PyTorch installed (scripts/gpu-bundle-run.sh).
# Usage: scripts/gpu-bundle.sh [archive]   (default .gpu/bundle.tar.xz, which git ignores)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
archive="${1:-$repo/.gpu/bundle.tar.xz}"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
quiet=(-c Release --nologo -v quiet -o "$stage/app")
dotnet publish tests/GpuCheck "${quiet[@]}"
dotnet publish benchmarks/Throughput "${quiet[@]}"
# The CPU libtorch (about 500 MB) stays behind; only TorchSharp's own binding travels.
find "$stage/app" -maxdepth 1 -name 'lib*.so*' ! -name libLibTorchSharp.so -delete
dotnet_home="$(dirname "$(readlink -f "$(command -v dotnet)")")"
runtime="$(ls "$dotnet_home/shared/Microsoft.NETCore.App" | sort -V | tail -1)"
fxr="$(ls "$dotnet_home/host/fxr" | sort -V | tail -1)"
mkdir -p "$stage/dotnet/shared/Microsoft.NETCore.App" "$stage/dotnet/host/fxr"
cp "$dotnet_home/dotnet" "$stage/dotnet/"
cp -r "$dotnet_home/shared/Microsoft.NETCore.App/$runtime" "$stage/dotnet/shared/Microsoft.NETCore.App/"
cp -r "$dotnet_home/host/fxr/$fxr" "$stage/dotnet/host/fxr/"
mkdir -p "$(dirname "$archive")"
tar -C "$stage" -cf - app dotnet | xz -T0 -6 > "$archive"
echo "gpu-bundle: $archive ($(du -h "$archive" | cut -f1)); on the GPU machine: scripts/gpu-bundle-run.sh $archive" >&2
