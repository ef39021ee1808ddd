#!/usr/bin/env bash
# Lints the silo's OpenAPI document (/openapi/v1.json) with @redocly/cli (pinned in package.json, recommended rules):
# starts a silo with in-memory storage on free ports, fetches the document, and fails on any error.
# Usage: scripts/api-lint.sh   (after `dotnet build src/Silo -c Release`). Exit 0: no error.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
[[ -x node_modules/.bin/redocly ]] || { echo "api-lint: node_modules/.bin/redocly is missing: run scripts/bootstrap.sh (npm ci)" >&2; exit 1; }
out="$repo/artifacts/openapi"
mkdir -p "$out"
free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
http=$(free_port)
CKPT_Tenancy__SigningKey="$(head -c 32 /dev/urandom | base64)" CKPT_Storage__GrainState=Memory CKPT_Storage__Checkpoints=Memory \
  CKPT_Silo__SiloPort=$(free_port) CKPT_Silo__GatewayPort=$(free_port) CKPT_Silo__HttpPort="$http" \
  dotnet src/Silo/bin/Release/net10.0/linux-x64/Checkpointing.Silo.dll >"$out/silo.log" 2>&1 &
silo=$!
trap 'kill "$silo" 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$http/openapi/v1.json" -o "$out/v1.json" && break; sleep 1; done
[[ -s "$out/v1.json" ]] || { echo "api-lint: the silo served no /openapi/v1.json (see $out/silo.log)" >&2; exit 1; }
node_modules/.bin/redocly lint "$out/v1.json" --format=stylish 2>&1 | grep -v '[║╔╚]' | grep -v '^\s*$'
