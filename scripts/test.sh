#!/usr/bin/env bash
# Runs every test project. As root on Debian 12 it first installs containerd, runc and
# busybox-static, so the end-to-end tests run against a real containerd; without root they are
# skipped, and say so. Results (TRX) go to $TEST_RESULTS (default: ./TestResults).
set -euo pipefail
cd "$(dirname "$0")/.."
results=${TEST_RESULTS:-$PWD/TestResults}
if [ "$(id -u)" = 0 ]; then bash scripts/install-deps.sh; fi

# Publish the shim once, as an operator installs it; the end-to-end tests use this copy.
shim_dir=$(mktemp -d /tmp/psh-shim-XXXX)
win_dir=$(mktemp -d /tmp/psh-win-XXXX)
sdk_dir=$(mktemp -d /tmp/psh-sdk-XXXX)
trap 'rm -rf "$shim_dir" "$win_dir" "$sdk_dir"' EXIT
# The Windows host must keep compiling (nothing runs it here): win-x64, without ReadyToRun to save time.
dotnet publish src/Shim.Host -c Release -r win-x64 --self-contained false -p:PublishReadyToRun=false \
  -o "$win_dir" --nologo -v quiet
test -f "$win_dir/containerd-shim-pluggable-v1.exe" -a -f "$win_dir/plugins/runhcs/runhcs.dll" \
  || { echo "win-x64 publish left no containerd-shim-pluggable-v1.exe or plugins/runhcs" >&2; exit 1; }
dotnet publish src/Shim.Host -c Release -o "$shim_dir" --nologo -v quiet
export PLUGGABLESHIM_SHIM_DIR=$shim_dir
# Under CI a missing containerd is a failure, not a skip.
if [ "${CI:-}" = true ]; then export PLUGGABLESHIM_REQUIRE_CONTAINERD=1; fi

rm -rf "$results"
# The plugin SDK as a third party uses it, outside the solution: a plugin from the template, built
# against the packed packages, passes the conformance kit, and is installed as plugins/sample for
# the end-to-end tests (which run it under containerd). Its TRX joins the others.
sdk_status=0
bash scripts/plugin-sdk.sh "$sdk_dir" || sdk_status=$?
dotnet test PluggableShim.slnx --nologo --logger "trx" --logger "console;verbosity=normal" \
  --results-directory "$results" --blame-hang-timeout 10m && [ "$sdk_status" = 0 ]
