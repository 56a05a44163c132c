# shellcheck shell=bash
# Helpers for a cached Debian bookworm arm64 (or amd64) root filesystem; arm64 runs under
# qemu-user-static on other hosts.
# Sourced by verify_arm64.sh and image_check.sh; needs root, debootstrap, qemu-user-static and
# binfmt-support (apt-get install debootstrap qemu-user-static binfmt-support).

KWS_CACHE="${KWS_CACHE:-$HOME/.cache/kws-edge}"
ROOTFS_ARCH="${ROOTFS_ARCH:-arm64}"   # Debian architecture: arm64 (default) or amd64
ROOTFS="${KWS_ARM64_ROOTFS:-$KWS_CACHE/$ROOTFS_ARCH-rootfs}"
[ "$ROOTFS_ARCH" = arm64 ] || ROOTFS="$KWS_CACHE/$ROOTFS_ARCH-rootfs"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Python 3.11 (bookworm's), venv + pip (also what makes the rootfs a stand-in for the
# python:3.11-slim-bookworm image), certificates for PyPI.
ROOTFS_PACKAGES="python3,python3-venv,python3-pip,python-is-python3,ca-certificates"
ROOTFS_STAMP="bookworm $ROOTFS_ARCH minbase $ROOTFS_PACKAGES v1"

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# Registers qemu-aarch64 with binfmt_misc (the F flag makes it usable inside chroots).
ensure_binfmt() {
  if [ "$(dpkg --print-architecture 2>/dev/null)" = "$ROOTFS_ARCH" ] \
     || [ "$(uname -m)" = aarch64 ]; then return 0; fi
  if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  if ! grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null; then
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || update-binfmts --enable
  fi
  grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || {
    log "qemu-aarch64 is not registered with binfmt_misc (apt-get install qemu-user-static binfmt-support)"
    return 1
  }
}

# Builds the root filesystem once (stage 1 + 2 of debootstrap, ~4 min, ~335 MB); reused while
# the stamp matches.
# With KWS_ROOTFS_TARBALL=1 it also keeps "$ROOTFS.tar" (plain files, device nodes inside): a
# CI cache (actions/cache) can hold that where it cannot restore the tree as a non-root user.
ensure_rootfs() {
  ensure_binfmt
  local tarball="$ROOTFS.tar"
  if [ ! -f "$ROOTFS/.kws-rootfs" ] && [ -f "$tarball" ] \
     && [ "$(cat "$tarball.stamp" 2>/dev/null)" = "$ROOTFS_STAMP" ]; then
    log "$ROOTFS_ARCH rootfs: unpacking the cached $tarball"
    rm -rf "$ROOTFS" && mkdir -p "$ROOTFS"
    tar -C "$ROOTFS" --numeric-owner -xpf "$tarball"
  fi
  if [ -f "$ROOTFS/.kws-rootfs" ] && [ "$(cat "$ROOTFS/.kws-rootfs")" = "$ROOTFS_STAMP" ]; then
    log "$ROOTFS_ARCH rootfs: cached at $ROOTFS"
    return 0
  fi
  log "$ROOTFS_ARCH rootfs: debootstrap bookworm into $ROOTFS (a few minutes)"
  local tmp="$ROOTFS.tmp" t0=$SECONDS
  rm -rf "$tmp" "$ROOTFS"
  mkdir -p "$(dirname "$ROOTFS")"
  debootstrap --arch="$ROOTFS_ARCH" --variant=minbase --include="$ROOTFS_PACKAGES" \
    bookworm "$tmp" "$DEBIAN_MIRROR" >"$tmp.log" 2>&1 || {
      tail -n 30 "$tmp.log" >&2; return 1; }
  rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*_dists_*
  echo "$ROOTFS_STAMP" > "$tmp/.kws-rootfs"
  mv "$tmp" "$ROOTFS"
  rm -f "$tmp.log"
  if [ "${KWS_ROOTFS_TARBALL:-0}" = 1 ]; then
    tar -C "$ROOTFS" --numeric-owner -cpf "$tarball" . && echo "$ROOTFS_STAMP" > "$tarball.stamp"
  fi
  log "$ROOTFS_ARCH rootfs: built in $((SECONDS - t0)) s, $(du -sh "$ROOTFS" | cut -f1)"
}

# in_rootfs [VAR=value...] CMD...: runs CMD as root in the rootfs, in a private mount namespace
# (so the mounts go away with it), with /proc, the pip cache and a resolv.conf, but NOT /sys:
# ai-edge-litert 2.3.0 segfaults under qemu when it can read the host's /sys/devices/system/cpu.
in_rootfs() {
  local pip_cache="$KWS_CACHE/pip-$ROOTFS_ARCH"
  mkdir -p "$pip_cache" "$ROOTFS/root/.cache/pip"
  cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf" 2>/dev/null || true
  # The host's CA bundle (it may hold a proxy's CA that Debian's bundle lacks).
  cp -L /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/kws-host-ca.crt" 2>/dev/null \
    || cp "$ROOTFS/etc/ssl/certs/ca-certificates.crt" "$ROOTFS/etc/ssl/certs/kws-host-ca.crt"
  # shellcheck disable=SC2016  # the inner shell expands these
  unshare --mount --propagation private -- /bin/sh -ec '
    r="$1"; c="$2"; shift 2
    mount -t proc proc "$r/proc"
    mount --bind "$c" "$r/root/.cache/pip"
    exec chroot "$r" "$@"' sh "$ROOTFS" "$pip_cache" \
    /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    PIP_CERT=/etc/ssl/certs/kws-host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=120 ${PIP_INDEX_URL:+PIP_INDEX_URL=$PIP_INDEX_URL} \
    ${https_proxy:+https_proxy=$https_proxy} ${HTTPS_PROXY:+HTTPS_PROXY=$HTTPS_PROXY} \
    OPENBLAS_NUM_THREADS=1 TF_CPP_MIN_LOG_LEVEL=2 "$@"
}
