#!/usr/bin/env bash
# Builds a one-layer OCI image archive from Debian's busybox-static, for `ctr image import`
# (there is no registry on these machines). Usage: busybox-image.sh OUT.tar [REF]
set -euo pipefail
out=${1:?usage: busybox-image.sh OUT.tar [REF]}
ref=${2:-docker.io/library/busybox:pluggableshim}
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "busybox-image.sh: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/tmp" "$work/rootfs/etc" "$work/rootfs/proc" "$work/rootfs/dev" \
         "$work/rootfs/sys" "$work/blobs/sha256"
cp "$busybox" "$work/rootfs/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$work/rootfs/bin/$applet"
done
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/rootfs" -cf "$work/layer.tar" .

blob() { # file -> digest hex; moves it into blobs/
  local hex; hex=$(sha256sum "$1" | cut -d' ' -f1)
  mv "$1" "$work/blobs/sha256/$hex"; echo "$hex"
}
size() { stat -c %s "$work/blobs/sha256/$1"; }

layer=$(blob "$work/layer.tar")
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
cat > "$work/config.json" <<JSON
{"architecture":"$arch","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:$layer"]}}
JSON
config=$(blob "$work/config.json")
cat > "$work/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config","size":$(size "$config")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$layer","size":$(size "$layer")}]}
JSON
manifest=$(blob "$work/manifest.json")
cat > "$work/index.json" <<JSON
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest","size":$(size "$manifest"),"annotations":{"io.containerd.image.name":"$ref","org.opencontainers.image.ref.name":"${ref##*:}"}}]}
JSON
echo '{"imageLayoutVersion":"1.0.0"}' > "$work/oci-layout"
tar -C "$work" -cf "$out" oci-layout index.json blobs
