#!/usr/bin/env bash
# README command 1: install what is missing, build, then run the demo training job twice:
# first it "crashes" part-way (--stop-at), then a new process resumes from the last checkpoint.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/bootstrap.sh
dotnet build src/Cli -c Release --nologo -v quiet
ckpt="dotnet src/Cli/bin/Release/net10.0/linux-x64/ckpt.dll"
dir="${1:-$repo/artifacts/demo-run}"
rm -rf "$dir"
echo "== training into $dir, crashing at iteration 130 =="
$ckpt demo --dir "$dir" --iters 200 --period 20 --max-to-keep 3 --stop-at 130 --json || echo "(exit $? = simulated crash)"
echo "== restarting: resumes from the last checkpoint =="
$ckpt demo --dir "$dir" --iters 200 --period 20 --max-to-keep 3 --json
echo "== catalog =="
$ckpt ls "$dir"
$ckpt verify "$dir/model_final"
