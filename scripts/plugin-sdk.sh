#!/usr/bin/env bash
# The plugin SDK as a third party uses it, outside the solution: packs PluggableShim.Abstractions and
# PluggableShim.Conformance into a local package folder, creates a plugin and its conformance test
# project from the `dotnet new` template (templates/pluggableshim-plugin), builds and publishes them
# against those packages only, installs the published plugin folder into the host's plugins/ as an
# operator would (the end-to-end tests then run it under containerd by its runtime name), and runs
# the conformance kit against the published host ($PLUGGABLESHIM_SHIM_DIR) with TRX results into
# $TEST_RESULTS. The plugin is installed before the kit runs, so that a kit failure fails only the kit.
#   usage: scripts/plugin-sdk.sh WORKDIR     (PLUGGABLESHIM_SHIM_DIR and TEST_RESULTS set)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$1
shim_dir=${PLUGGABLESHIM_SHIM_DIR:?publish the host and set PLUGGABLESHIM_SHIM_DIR}
results=${TEST_RESULTS:-$PWD/TestResults}
name=Sample                      # the template makes plugin "sample": containerd-shim-sample-v1
plugin=$(echo "$name" | tr 'A-Z' 'a-z')
# A version of its own per run, so that NuGet's global cache never serves an older build.
version=0.1.0-ci.$(date +%s)

packages=$work/packages
rm -rf "$work" && mkdir -p "$packages"
dotnet pack src/Shim.Abstractions -c Release -o "$packages" -p:Version="$version" --nologo -v quiet
dotnet pack tests/Shim.Conformance -c Release -o "$packages" -p:Version="$version" --nologo -v quiet

# The template, installed for this run only.
export DOTNET_CLI_HOME=$work/cli-home DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
export NUGET_PACKAGES=${NUGET_PACKAGES:-$HOME/.nuget/packages}
# This run's packages leave NuGet's global cache with it; nothing else there is touched.
trap 'rm -rf "$NUGET_PACKAGES"/pluggableshim.{abstractions,conformance}/"$version"; rmdir "$NUGET_PACKAGES"/pluggableshim.{abstractions,conformance} 2>/dev/null || true' EXIT
dotnet new install "$PWD/templates/pluggableshim-plugin" >/dev/null
dotnet new pluggableshim-plugin -n "$name" -o "$work/$name" --shimVersion "$version" >/dev/null
cat >"$work/$name/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="pluggableshim" value="$packages" />
  </packageSources>
</configuration>
XML

# Outside the solution: nothing of the repository's build (Directory.*.props, slnx) reaches it.
cd "$work/$name"
dotnet publish "src/$name" -c Release -o "$work/out/$plugin" --nologo -v quiet

# Installed as an operator installs a third-party plugin: a folder copied into plugins/.
rm -rf "$shim_dir/plugins/$plugin"
cp -r "$work/out/$plugin" "$shim_dir/plugins/$plugin"

PLUGGABLESHIM_PLUGIN_DIR="$work/out/$plugin" dotnet test "tests/$name.Conformance" --nologo \
  --logger "trx;LogFileName=$name.Conformance.trx" --logger "console;verbosity=normal" --results-directory "$results"
