#!/usr/bin/env bash
# Runs on a GPU machine with the archive made by scripts/gpu-bundle.sh: points TorchSharp at the CUDA
# libtorch of the local PyTorch, runs the Category=Gpu tests (a skip is a failure there) and then
# `ckpt-bench io --device cuda`. Needs nvidia-smi and a python3 that imports a CUDA torch.
# Usage: scripts/gpu-bundle-run.sh ARCHIVE [--size-mib 1024]
set -euo pipefail
archive="$1"; shift
size=1024
if [[ "${1:-}" == --size-mib ]]; then size="$2"; fi
nvidia-smi -L
python="$(command -v python3)"
libtorch="$("$python" -c 'import os, torch; assert torch.cuda.is_available(), "torch sees no GPU"; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
echo "libtorch from $("$python" -c 'import torch; print(torch.__version__)') at $libtorch (TorchSharp 0.107 is built against 2.10)"
bundle="$(mktemp -d)"
xz -dc "$archive" | tar -C "$bundle" -xf -
export LD_LIBRARY_PATH="$libtorch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_ROOT="$bundle/dotnet" DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 CKPT_TORCH_PYTHON="$python"
# Which libtorch TorchSharp's binding will bind to (a "not found" here explains a CUDA load failure).
ldd "$bundle/app/libLibTorchSharp.so" | grep -E 'torch|c10|not found' || true
status=0
"$bundle/dotnet/dotnet" "$bundle/app/gpu-check.dll" || status=1
"$bundle/dotnet/dotnet" "$bundle/app/ckpt-bench.dll" io --device cuda --size-mib "$size" --repeat 3 \
  --rows local_save_vs_filestream,load_warm_vs_torch_load,async_stall_vs_memcpy || status=1
exit $status
