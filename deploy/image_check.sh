#!/usr/bin/env bash
# make image-check: builds Dockerfile.arm64 for linux/arm64 OFFLINE and runs `kws-edge predict`
# in the image (podman/buildah, vfs storage, chroot isolation, qemu-user-static).
#
# No registry is reachable here, so the base image is a local stand-in: the cached Debian
# bookworm arm64 root filesystem (deploy/rootfs.sh; Debian's python3 is 3.11) imported as
# docker.io/library/python:3.11-slim-bookworm, with pip's EXTERNALLY-MANAGED marker removed so
# that it behaves like the official image. CI (.github/workflows/images.yml) builds from the
# real base image with buildx for linux/amd64 and linux/arm64.
#
# Environment: KWS_IMAGE_PLATFORM (default linux/arm64), KWS_IMAGE (tag, default
# localhost/kws-edge:arm64-check), KWS_CACHE, PY (x86 python with TensorFlow, only used when
# no model is shipped in artifacts/), KWS_DATA_DIR.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PLATFORM="${KWS_IMAGE_PLATFORM:-linux/arm64}"
case "$PLATFORM" in
  linux/arm64) ROOTFS_ARCH=arm64 ;;
  linux/amd64) ROOTFS_ARCH=amd64 ;;
  *) echo "image-check: no stand-in for $PLATFORM (linux/arm64, linux/amd64)" >&2; exit 2 ;;
esac
# shellcheck source=deploy/rootfs.sh
. deploy/rootfs.sh

IMAGE="${KWS_IMAGE:-localhost/kws-edge:$ROOTFS_ARCH-check}"
DOCKERFILE="${KWS_DOCKERFILE:-Dockerfile.arm64}"
BASE=docker.io/library/python:3.11-slim-bookworm
PY="${PY:-$root/.venv/bin/python}"
PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"  # absolute: later steps cd elsewhere
DATA="${KWS_DATA_DIR:-$root/../shared/data/speech_commands_mini}"
MAX_MB="${KWS_IMAGE_MAX_MB:-200}"
[ "$(id -u)" = 0 ] || { echo "image-check: needs root" >&2; exit 2; }
command -v podman >/dev/null || { echo "image-check: apt-get install podman buildah runc" >&2; exit 2; }

podman=(podman --storage-driver vfs --cgroup-manager cgroupfs)
command -v runc >/dev/null && podman+=(--runtime runc)
t_start=$SECONDS

# -- 1. the stand-in base image ---------------------------------------------------------------
# One local image per architecture (localhost/python-standin:3.11-slim-bookworm-<arch>); the
# one for $PLATFORM is tagged as the official name just before the build.
ensure_rootfs
standin="localhost/python-standin:3.11-slim-bookworm-$ROOTFS_ARCH"
standin_stamp="standin-v1 $ROOTFS_STAMP"
if [ "$("${podman[@]}" image inspect --format '{{ index .Labels "kws.standin" }}' "$standin" \
        2>/dev/null || true)" = "$standin_stamp" ]; then
  log "stand-in $standin: cached"
else
  log "stand-in $standin: importing the $ROOTFS_ARCH rootfs"
  st="$KWS_CACHE/standin-$ROOTFS_ARCH"
  rm -rf "$st"
  mkdir -p "$st"
  tar -C "$ROOTFS" --exclude=./opt/kws-verify-litert --exclude=./opt/kws-verify-tflite_runtime \
      --exclude=./tmp/kws-verify --exclude=./root/.cache --exclude=./proc/* \
      --exclude=./.kws-rootfs -cf - . | tar -C "$st" -xf -
  # The official image's pip installs into the system Python: no PEP 668 marker there.
  rm -f "$st"/usr/lib/python3*/EXTERNALLY-MANAGED
  # Trust what this host trusts (it may sit behind a TLS-intercepting proxy).
  if ! cmp -s /etc/ssl/certs/ca-certificates.crt "$st/etc/ssl/certs/ca-certificates.crt"; then
    cat /etc/ssl/certs/ca-certificates.crt >> "$st/etc/ssl/certs/ca-certificates.crt"
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$st/etc/pip.conf"
  fi
  : > "$st/etc/resolv.conf"
  tar -C "$st" -cf - . | "${podman[@]}" import --arch "$ROOTFS_ARCH" --os linux \
    --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' \
    --change "LABEL kws.standin=\"$standin_stamp\"" - "$standin" >/dev/null
  rm -rf "$st"
fi
"${podman[@]}" tag "$standin" "$BASE"

# -- 2. the image --------------------------------------------------------------------------
log "podman build --platform $PLATFORM -f $DOCKERFILE -t $IMAGE"
t0=$SECONDS
"${podman[@]}" build --format docker --isolation chroot --pull=never --platform "$PLATFORM" \
  -f "$DOCKERFILE" -t "$IMAGE" .
t_build=$((SECONDS - t0))
size=$("${podman[@]}" image inspect --format '{{.Size}}' "$IMAGE")
arch=$("${podman[@]}" image inspect --format '{{.Architecture}}' "$IMAGE")
size_mb=$((size / 1000000))
base_mb=$(( $("${podman[@]}" image inspect --format '{{.Size}}' "$BASE") / 1000000 ))
log "image $IMAGE: $arch, $size_mb MB = stand-in base $base_mb MB + kws-edge $((size_mb - base_mb)) MB; built in $t_build s"

# -- 3. run it -----------------------------------------------------------------------------
work="$(mktemp -d)"
cid=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  [ -z "$cid" ] || "${podman[@]}" rm -f "$cid" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/clips" "$work/empty"
for label in yes no up _silence_ _unknown_; do
  mapfile -t files < <(find "$DATA/$label" -maxdepth 1 -name '*.wav' 2>/dev/null | sort)
  [ ${#files[@]} -eq 0 ] || cp -t "$work/clips" "${files[@]:0:2}"
done
mapfile -t host_clips < <(find "$work/clips" -name '*.wav' | sort)
[ ${#host_clips[@]} -gt 0 ] || { echo "image-check: no clips in $DATA" >&2; exit 2; }
image_clips=()
for f in "${host_clips[@]}"; do image_clips+=("/work/clips/$(basename "$f")"); done

model_args=() host_model_args=()
manifest="$root/artifacts/kws_int8.manifest.json"
if [ ! -f artifacts/kws_int8.tflite ]; then
  log "no shipped model in artifacts/: testing with a small generated one"
  "$PY" - "$work/model" >"$work/model.log" 2>&1 <<'PYEOF' || { tail "$work/model.log"; exit 1; }
import sys
from pathlib import Path

sys.path.insert(0, "tests")
from model_factory import build_models  # noqa: E402

build_models(Path(sys.argv[1]), name="check")
PYEOF
  model_args=(--model /work/model/check_int8.tflite)
  host_model_args=(--model "$work/model/check_int8.tflite")
  manifest="$work/model/check_int8.manifest.json"
fi
chmod -R a+rX "$work"
# ai-edge-litert 2.3.0 segfaults under qemu when it reads the host's /sys/devices/system/cpu:
# an empty directory goes over it (only needed under emulation; a real arm64 host is fine).
run=(timeout 300 "${podman[@]}" run --rm --network none --platform "$PLATFORM"
     --ulimit nofile=20000:20000 --ulimit nproc=4096:4096
     -v "$work/empty:/sys/devices/system/cpu:ro" -v "$work:/work:ro")
"${podman[@]}" image inspect --format \
  'user={{.Config.User}} entrypoint={{.Config.Entrypoint}} cmd={{.Config.Cmd}} healthcheck={{.Config.Healthcheck}}' \
  "$IMAGE"
log "podman run $IMAGE info"
"${run[@]}" "$IMAGE" info "${model_args[@]}" || {
  [ ${#model_args[@]} -gt 0 ] || echo "image-check: artifacts/kws_int8.tflite exists but is not" \
    "in the installed package: pyproject.toml must package \`artifacts\` as" \
    "edge_runtime.shipped with its *.tflite/*.manifest.json (package-dir + package-data)" >&2
  exit 1
}
# TFLite's reference kernels are bit-exact across CPUs (the optimised ones may differ by a few
# int8 steps between x86 and arm64; see make verify-arm64), so both sides use them here.
log "podman run $IMAGE predict (${#image_clips[@]} clips, reference kernels)"
t0=$SECONDS
"${run[@]}" -e KWS_OP_RESOLVER=ref "$IMAGE" predict --json --top-k 12 "${model_args[@]}" "${image_clips[@]}" \
  > "$work/image.predict.json"
t_predict=$((SECONDS - t0))
log "the same clips on x86 ($PY)"
KWS_OP_RESOLVER=ref "$(dirname "$PY")/kws-edge" predict --json --top-k 12 \
  "${host_model_args[@]}" "${host_clips[@]}" \
  > "$work/x86.predict.json"
status=0
"$PY" deploy/compare_results.py --manifest "$manifest" \
  --predict "$work/x86.predict.json" "$work/image.predict.json" || status=1

# serve + the image's HEALTHCHECK (podman runs it on demand; no systemd timer here).
log "podman run -d $IMAGE serve; podman healthcheck run"
cid=$(timeout 60 "${podman[@]}" run -d --network none --platform "$PLATFORM" \
  --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 \
  -v "$work/empty:/sys/devices/system/cpu:ro" -v "$work:/work:ro" \
  "$IMAGE" serve --host 127.0.0.1 --port 8080 "${model_args[@]}" 2>/dev/null)
healthy=0
for _ in $(seq 1 45); do
  if timeout 30 "${podman[@]}" healthcheck run "$cid" >/dev/null 2>&1; then healthy=1; break; fi
  sleep 2
done
if [ "$healthy" = 1 ]; then
  log "HEALTHCHECK: healthy (GET /api/health inside the container)"
else
  log "HEALTHCHECK: not healthy after 90 s"; "${podman[@]}" logs "$cid" 2>&1 | tail -n 20
  status=1
fi

if [ "$size_mb" -gt "$MAX_MB" ]; then
  log "image-check: WARNING: $size_mb MB > $MAX_MB MB with the stand-in base ($base_mb MB; the" \
      "official python:3.11-slim-bookworm is smaller, see deploy/README.md)"
fi
echo "image-check: build ${t_build}s, predict ${t_predict}s, image ${size_mb} MB" \
     "(base ${base_mb} MB + kws-edge $((size_mb - base_mb)) MB, $arch), total $((SECONDS - t_start))s"
if [ "$status" = 0 ]; then log "image-check: OK"; else log "image-check: FAILED"; fi
exit "$status"
