#!/usr/bin/env bash
# The consumer test: a fresh console app in a temporary folder, outside the solution, installs the
# packages from the local feed (artifacts/packages; third-party packages from the NuGet registry)
# as the README's Install section says, builds the README's Getting started program as it stands,
# crashes it (CRASH_AT), resumes it, and checks that its final weights equal an uninterrupted
# run's bit for bit. It also installs `ckpt` as a dotnet tool from the same feed and runs
# `ckpt --help`, `ckpt ls`, `ckpt verify` and `ckpt convert` on what the program saved, and prints
# the tool's installed size and the start time of `ckpt ls`.
# Usage: scripts/consumer-test.sh [--no-pack]   (--no-pack: use the packages already in artifacts/packages)
# Exit 0 when every check passes; each failure is one line "consumer-test: ..." on stderr.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
feed="$repo/artifacts/packages"
fail() { echo "consumer-test: $*" >&2; exit 1; }
step() { echo "consumer-test: $*" >&2; }

if [[ "${1:-}" != --no-pack ]]; then bash "$repo/scripts/pack.sh"; fi
version="$(sed -n 's:.*<VersionPrefix>\(.*\)</VersionPrefix>.*:\1:p' "$repo/Directory.Build.props")"
[[ -f "$feed/Checkpointing.Core.$version.nupkg" ]] || fail "no Checkpointing.Core.$version.nupkg in $feed (run scripts/pack.sh)"
torch_version="$(sed -n 's:.*<PackageVersion Include="TorchSharp-cpu" Version="\(.*\)" />.*:\1:p' "$repo/Directory.Packages.props")"

work="$(mktemp -d /tmp/ckpt-consumer-XXXXXX)"
trap 'rm -rf "$work"' EXIT
# Our packages come only from the local feed, everything else only from the registry. The local
# feed's packages are re-packed with the same version, so the global cache must not serve an old copy.
global="$(dotnet nuget locals global-packages --list | sed 's/^global-packages: //')"
rm -rf "$global"/checkpointing.*
cat > "$work/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="checkpointing" value="$feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
  <packageSourceMapping>
    <packageSource key="checkpointing"><package pattern="Checkpointing.*" /></packageSource>
    <packageSource key="nuget.org"><package pattern="*" /></packageSource>
  </packageSourceMapping>
</configuration>
XML

step "a new console app in $work/app"
cd "$work"
dotnet new console -o app --framework net10.0 >/dev/null
cd app
dotnet add package Checkpointing.Core --version "$version" >/dev/null || fail "dotnet add package Checkpointing.Core failed"
dotnet add package TorchSharp-cpu --version "$torch_version" >/dev/null || fail "dotnet add package TorchSharp-cpu failed"
sed -i 's:<OutputType>Exe</OutputType>:<OutputType>Exe</OutputType>\n    <RuntimeIdentifier>linux-x64</RuntimeIdentifier>:' app.csproj
# The README's Getting started program, as it stands: the csharp block after the consumer-test marker.
awk '/<!-- scripts\/consumer-test.sh builds and runs this program/ { marked = 1; next }
     marked && /^```csharp$/ { inside = 1; next }
     inside && /^```$/ { exit }
     inside { print }' "$repo/README.md" > Program.cs
[[ -s Program.cs ]] || fail "README.md has no Getting started program after the consumer-test marker"
dotnet build -c Release --nologo -v quiet >"$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; fail "the README program does not build against the packages"; }
app=(dotnet bin/Release/net10.0/linux-x64/app.dll)

step "an uninterrupted run"
"${app[@]}" "$work/straight" >/dev/null || fail "the uninterrupted run failed"
step "a run crashed at iteration 150, then resumed"
# Through a child shell, so that its report of the abort lands in crash.log too.
if CRASH_AT=150 bash -c '"$@"' crash "${app[@]}" "$work/crashed" >/dev/null 2>"$work/crash.log"; then fail "CRASH_AT=150 did not crash the program"; fi
grep -q "simulated crash at iteration 150" "$work/crash.log" || fail "the crash was not the simulated one: $(tail -3 "$work/crash.log")"
[[ "$(cat "$work/crashed/last_checkpoint")" == model_0000139 ]] || fail "after the crash last_checkpoint is '$(cat "$work/crashed/last_checkpoint")', expected model_0000139"
"${app[@]}" "$work/crashed" >/dev/null || fail "the resumed run failed"

step "ckpt as a dotnet tool from the same feed"
dotnet tool install --tool-path "$work/tool" Checkpointing.Cli --version "$version" >/dev/null || fail "dotnet tool install Checkpointing.Cli failed"
ckpt="$work/tool/ckpt"
"$ckpt" --help | grep -q "exit codes: 0 ok" || fail "ckpt --help does not print the exit codes"
"$ckpt" ls "$work/crashed" | grep -q '^\* model_final' || fail "ckpt ls does not mark model_final as the last checkpoint"
"$ckpt" verify "$work/crashed/model_final" >/dev/null 2>&1 || fail "ckpt verify refused the resumed run's model_final"
"$ckpt" convert "$work/straight/model_final" "$work/straight.safetensors" >/dev/null
"$ckpt" convert "$work/crashed/model_final" "$work/crashed.safetensors" >/dev/null
cmp -s "$work/straight.safetensors" "$work/crashed.safetensors" || fail "the resumed run's final weights differ from the uninterrupted run's"
start_ms="$(date +%s%N)"; "$ckpt" ls "$work/crashed" >/dev/null; end_ms="$(date +%s%N)"
step "ok: resumed weights equal the uninterrupted run's bit for bit; tool installed size $(du -sh "$work/tool" | cut -f1), ckpt ls took $(( (end_ms - start_ms) / 1000000 )) ms"
