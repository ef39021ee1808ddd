#!/usr/bin/env bash
# Packs every package (the libraries under src/ and the `ckpt` tool) into artifacts/packages/,
# with their symbol packages (.snupkg). The version comes from Directory.Build.props.
# Usage: scripts/pack.sh [--no-build]   (--no-build: pack the Release build already there)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
feed="$repo/artifacts/packages"
rm -rf "$feed"
mkdir -p "$feed"
# The projects Directory.Build.props marks packable, each packed on its own (packing the solution
# would warn for every project that is not a package).
for project in src/*/*.csproj; do
  [[ "$(dotnet msbuild "$project" -getProperty:IsPackable)" == true ]] || continue
  dotnet pack "$project" -c Release --nologo -v quiet -warnaserror -o "$feed" "$@"   # a package warning fails the pack
done
echo "pack: $(ls "$feed"/*.nupkg | wc -l) packages in $feed" >&2
