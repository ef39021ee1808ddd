#!/usr/bin/env bash
# README command 1: install what is missing, build, then run the main job on this machine:
# Azurite + a silo + N trainer-agent processes checkpointing into blobs under one run grain;
# one agent is SIGKILLed mid-run, the job restarts from the grain's last checkpoint and finishes
# with model_final; the run's catalog is printed. Extra arguments go to `ckpt-lab job`
# (e.g. --agents 4 --iters 400 --kill-at 150 --json).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/bootstrap.sh
echo "[demo] building ckpt-lab and the silo (Release)"
dotnet build tools/Lab -c Release --nologo -v quiet
dotnet build src/Silo -c Release --nologo -v quiet
exec dotnet tools/Lab/bin/Release/net10.0/linux-x64/ckpt-lab.dll job "$@"
