#!/usr/bin/env bash
# The main job, end to end: builds the shim, starts a private containerd 1.6 (its own root,
# state and sockets in a temporary folder; the system's containerd is not touched), imports a
# busybox image built from busybox-static, runs containers' tasks through the shim with the Fake
# plugin, and cleans up everything it started. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

work=$(mktemp -d /tmp/psh-demo-XXXX)
shim="$work/shim"
cd_pid=
cleanup() {
  set +e
  if [ -n "$cd_pid" ]; then
    for t in $(ctr -a "$work/containerd.sock" -n demo task ls -q 2>/dev/null); do
      ctr -a "$work/containerd.sock" -n demo task rm -f "$t" >/dev/null 2>&1
    done
    kill "$cd_pid" 2>/dev/null; wait "$cd_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "build: dotnet publish src/Shim.Host -c Release -o $shim"
dotnet publish src/Shim.Host -c Release -o "$shim" --nologo -v quiet
ln -s containerd-shim-pluggable-v1 "$shim/containerd-shim-fake-v1"
ls -1 "$shim" | grep containerd-shim; ls -1 "$shim/plugins"

step "start a private containerd (root and state under $work)"
cat > "$work/config.toml" <<TOML
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
TOML
PATH="$shim:$PATH" containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
cd_pid=$!
for _ in $(seq 100); do ctr -a "$work/containerd.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
ctr() { command ctr -a "$work/containerd.sock" -n demo "$@"; }
ctr version | sed -n '/Server/,$p'

step "import a busybox image built from busybox-static"
bash scripts/busybox-image.sh "$work/busybox.tar" docker.io/library/busybox:demo
ctr image import "$work/busybox.tar" >/dev/null
ctr image ls -q

img=docker.io/library/busybox:demo
rt=io.containerd.fake.v1
step "ctr run --rm --runtime $rt $img hello echo hello from the shim"
ctr run --rm --runtime $rt $img hello echo hello from the shim

step "an exit code passes through: sh -c 'exit 3'"
set +e; ctr run --rm --runtime $rt $img exit3 sh -c 'echo about to exit 3; exit 3'; echo "ctr exited $?"; set -e

step "stdin: printf abcdefgh | ctr run --rm ... head -c 4"
printf abcdefgh | ctr run --rm --runtime $rt $img stdin head -c 4; echo

step "a detached task: exec, ps, pause, resume, kill, rm"
ctr run -d --runtime $rt $img web sleep 300
ctr task exec --exec-id probe web sh -c 'echo exec says hi'
ctr task ps web
ctr task pause web; ctr task ls
ctr task resume web; ctr task ls
ctr task kill --signal SIGTERM web
for _ in $(seq 50); do ctr task ls | grep -q 'web .*STOPPED' && break; sleep 0.1; done
ctr task ls
ctr task rm web; ctr container rm web

step "a pod: two containers with the same io.kubernetes.cri.sandbox-id share one shim daemon"
pod=--annotation=io.kubernetes.cri.sandbox-id=pod1
stopped() { for _ in $(seq 100); do ctr task ls | grep -q "^$1 .*STOPPED" && return; sleep 0.1; done; }
ctr run -d --runtime $rt $pod $img pod1 sleep 300
ctr run -d --runtime $rt $pod $img pod1-app sh -c 'while :; do sleep 1; done'
echo "shim daemons serving pod1: $(pgrep -fc -- "-address $work/containerd.sock .*-group pod1 .*daemon")"
ctr task kill --all --signal SIGKILL pod1; stopped pod1; ctr task rm pod1; ctr container rm pod1
ctr task exec --exec-id after pod1-app echo "pod1-app still served after pod1 is gone"
ctr task kill --all --signal SIGKILL pod1-app; stopped pod1-app; ctr task rm pod1-app; ctr container rm pod1-app

step "the shim's log lines, as containerd recorded them"
grep -E 'shim serving|joined|exited with status|shim exiting' "$work/containerd.log" | sed -E 's/^time="[^"]+" //' | cut -c1-150 | head -16

step "nothing left: shim processes for this containerd"
pgrep -af "containerd-shim-.*-address $work/containerd.sock" || echo "none"
