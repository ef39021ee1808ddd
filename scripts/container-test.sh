#!/usr/bin/env bash
# The container test (issue 28). Builds the silo image (deploy/container/Dockerfile) on a Debian 12 base made here with
# debootstrap (no container registry is reachable), checks that it holds no libtorch and runs as non-root, then runs two
# silo containers (read-only root, host network) over a local Azurite, trains a run with `ckpt-lab agent`, SIGKILLs one
# silo container and the rank mid-run, starts a new attempt that resumes from the last checkpoint on the surviving
# silo, and checks that the run ends with model_final.
# Needs root, podman with runc, and debootstrap (scripts/bootstrap.sh installs them). Exit 0: passed; 1: failed (one
# line, and the silos' logs in artifacts/container/); 3: cannot run here (one line saying what is missing).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
say() { echo "container-test: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
missing() { say "cannot run here: $*"; exit 3; }
[[ "$(id -u)" == 0 ]] || missing "needs root (rootful podman, debootstrap)"
for tool in podman debootstrap /usr/sbin/runc curl; do command -v "$tool" >/dev/null || missing "$tool is not installed (scripts/bootstrap.sh installs podman, runc and debootstrap)"; done
podman=(podman --runtime /usr/sbin/runc)
limits=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
out="$repo/artifacts/container"
rm -rf "$out"; mkdir -p "$out"
image=checkpointing-silo:test
base=localhost/ckpt-base:bookworm

# 1. The base: Debian 12 minbase with what a self-contained .NET app needs; made once per machine.
if ! podman image exists "$base"; then
  say "making the base image $base (debootstrap bookworm, about a minute)"
  rootfs="$(mktemp -d /var/tmp/ckpt-base-XXXXXX)"
  debootstrap --variant=minbase --include=ca-certificates,libicu72,libssl3,zlib1g,libstdc++6 bookworm "$rootfs" http://deb.debian.org/debian >"$out/debootstrap.log" 2>&1 \
    || fail "debootstrap failed (see $out/debootstrap.log)"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import - "$base" >/dev/null
  rm -rf "$rootfs"
fi

# 2. The image: a self-contained publish (its own artifacts path, so the repository's build stays framework-dependent).
say "publishing the silo and building $image"
rm -rf artifacts/silo-image/app
dotnet publish src/Silo -c Release --self-contained --artifacts-path artifacts/silo-image/build -o artifacts/silo-image/app --nologo -v quiet >"$out/publish.log" 2>&1 \
  || fail "dotnet publish src/Silo failed (see $out/publish.log)"
podman build --build-arg BASE_IMAGE="$base" -f deploy/container/Dockerfile -t "$image" artifacts/silo-image >"$out/build.log" 2>&1 \
  || fail "podman build failed (see $out/build.log)"
[[ "$(podman image inspect "$image" --format '{{.Config.User}}')" == 1654:1654 ]] || fail "the image does not run as user 1654"
[[ "$("${podman[@]}" run --rm "${limits[@]}" --entrypoint /usr/bin/id "$image" -u)" == 1654 ]] || fail "a container of the image is not uid 1654"
torch="$("${podman[@]}" run --rm "${limits[@]}" --user 0:0 --entrypoint /usr/bin/find "$image" / -xdev \( -name 'libtorch*' -o -name 'libLibTorchSharp*' -o -name 'TorchSharp.dll' \) -print)"
[[ -z "$torch" ]] || fail "the image holds libtorch: $torch"

# 3. Azurite on this machine, two silo containers on the host network.
free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
blob=$(free_port); queue=$(free_port); table=$(free_port)
node node_modules/azurite/dist/src/azurite.js --silent --inMemoryPersistence --skipApiVersionCheck --disableProductStyleUrl \
  --blobHost 127.0.0.1 --blobPort "$blob" --queueHost 127.0.0.1 --queuePort "$queue" --tableHost 127.0.0.1 --tablePort "$table" >"$out/azurite.log" 2>&1 &
azurite=$!
containers=()
silo_ports=()
cleanup() {
  for c in "${containers[@]}"; do podman logs "$c" >"$out/$c.log" 2>&1 || true; podman rm -f "$c" >/dev/null 2>&1 || true; done
  kill "$azurite" 2>/dev/null || true
}
trap cleanup EXIT
storage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:$blob/devstoreaccount1;QueueEndpoint=http://127.0.0.1:$queue/devstoreaccount1;TableEndpoint=http://127.0.0.1:$table/devstoreaccount1;"
key="$(head -c 32 /dev/urandom | base64)"
cluster="container-$RANDOM"
gateways=()
https=()
for name in a b; do
  silo=$(free_port); gateway=$(free_port); http=$(free_port)
  container="ckpt-silo-$name-$cluster"
  # The key and the connection string go in by environment, as a Secret would in Kubernetes.
  CKPT_Storage__ConnectionString="$storage" CKPT_Tenancy__SigningKey="$key" "${podman[@]}" run -d --name "$container" "${limits[@]}" \
    --network host --read-only --tmpfs /tmp \
    -e CKPT_Storage__ConnectionString -e CKPT_Tenancy__SigningKey \
    -e CKPT_Silo__Mode=Cluster -e CKPT_Silo__ClusterId="$cluster" -e CKPT_Silo__AdvertisedAddress=127.0.0.1 \
    -e CKPT_Silo__SiloPort="$silo" -e CKPT_Silo__GatewayPort="$gateway" -e CKPT_Silo__HttpPort="$http" \
    -e CKPT_Membership__ProbeTimeout=00:00:01 -e CKPT_Membership__NumMissedProbesLimit=2 -e CKPT_Membership__NumProbedSilos=1 -e CKPT_Membership__NumVotesForDeathDeclaration=1 \
    "$image" >/dev/null || fail "podman run $container failed"
  containers+=("$container"); gateways+=("127.0.0.1:$gateway"); https+=("$http"); silo_ports+=("$silo")
done
for http in "${https[@]}"; do
  for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$http/readyz" >/dev/null && break; sleep 1; done
  curl -sf "http://127.0.0.1:$http/readyz" >/dev/null || fail "a silo container did not become ready on port $http"
done
say "two silo containers ready (${gateways[*]})"

# 4. A run trained by a rank; the silo container hosting the run and the rank SIGKILLed mid-run; a new attempt resumes.
ckpt=(dotnet src/Cli/bin/Release/net10.0/linux-x64/ckpt.dll)
lab=(dotnet tools/Lab/bin/Release/net10.0/linux-x64/ckpt-lab.dll)
silos="$(IFS=,; echo "${gateways[*]}")"
export CKPT_TOKEN="$(CKPT_SIGNING_KEY="$key" "${ckpt[@]}" token --tenant acme)" CKPT_STORAGE="$storage"
cluster_args=(--silo "$silos" --cluster-id "$cluster")
"${ckpt[@]}" run create acme/run1 --period 10 --max-iter 60 "${cluster_args[@]}" >/dev/null || fail "ckpt run create failed"
epoch=$("${ckpt[@]}" run attempt acme/run1 "${cluster_args[@]}")
"${lab[@]}" agent --run acme/run1 --rank 0 --world-size 1 --epoch "$epoch" --width 16 --hold-at 35 "${cluster_args[@]}" >"$out/agent1.jsonl" 2>"$out/agent1.err" &
agent=$!
for _ in $(seq 1 120); do grep -q '"event":"hold"' "$out/agent1.jsonl" && break; sleep 1; done
grep -q '"event":"hold"' "$out/agent1.jsonl" || fail "the first rank never reached iteration 35 (see $out/agent1.*)"
# The container whose silo hosts the run's grain dies: the grain must come back on the other one.
hosted=$("${ckpt[@]}" run show acme/run1 --json "${cluster_args[@]}" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["hosted_by"])')
victim=""
for i in "${!silo_ports[@]}"; do [[ "$hosted" == *":${silo_ports[$i]}:"* ]] && victim="${containers[$i]}"; done
[[ -n "$victim" ]] || fail "the run's grain is hosted by '$hosted', neither silo container"
podman kill -s KILL "$victim" >/dev/null
kill -KILL "$agent"; wait "$agent" 2>/dev/null || true
say "SIGKILLed silo container $victim (it hosted the run) and the rank at iteration 35"
epoch=$("${ckpt[@]}" run attempt acme/run1 "${cluster_args[@]}" --connect-timeout 60) || fail "a new attempt could not start on the surviving silo"
"${lab[@]}" agent --run acme/run1 --rank 0 --world-size 1 --epoch "$epoch" --width 16 "${cluster_args[@]}" >"$out/agent2.jsonl" 2>"$out/agent2.err" \
  || fail "the resumed rank failed: $(tail -1 "$out/agent2.jsonl")"
grep -q '"resumed_from":"model_0000029"' "$out/agent2.jsonl" || fail "the new attempt did not resume from model_0000029: $(head -1 "$out/agent2.jsonl")"
last=$("${ckpt[@]}" run show acme/run1 --json "${cluster_args[@]}" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["last"])')
[[ "$last" == model_final ]] || fail "the run ends at '$last', not model_final"
say "ok: image non-root with no libtorch; after a silo container was SIGKILLed the run resumed from model_0000029 and ended with model_final"
