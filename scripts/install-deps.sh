#!/usr/bin/env bash
# Installs what the demo and the tests need on Debian 12, as root: containerd 1.6 and runc
# (the reference shim comes with containerd), busybox-static (the test image). The .NET SDK
# is expected on the machine (see global.json).
set -euo pipefail
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "install-deps: run as root to install ${need[*]}" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v dotnet >/dev/null || { echo "install-deps: the .NET SDK (dotnet) is not on PATH; see global.json for the version" >&2; exit 1; }
