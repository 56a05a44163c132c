# Deployment targets (issue 8); included from the main Makefile, which defines VENV, PY, venv.
#   make verify-arm64   arm64 runtime under qemu == x86 results (litert + tflite-runtime)
#   make image-check    Dockerfile.arm64 built for linux/arm64 from a local stand-in base, run
#   make image-check-amd64  the same image for linux/amd64
#   make lint-deploy    hadolint, actionlint, unit and script checks
# verify-arm64 and image-check need root and: apt-get install debootstrap qemu-user-static
# binfmt-support podman buildah runc. Cache: $(KWS_CACHE) (the arm64 rootfs, pip downloads).
KWS_CACHE ?= $(HOME)/.cache/kws-edge
export KWS_CACHE

.PHONY: verify-arm64 image-check image-check-amd64 lint-deploy arm64-rootfs

arm64-rootfs:
	bash -c '. deploy/rootfs.sh && ensure_rootfs'

verify-arm64: venv
	PY=$(PY) bash deploy/verify_arm64.sh

image-check: venv
	PY=$(PY) bash deploy/image_check.sh

# The same Dockerfile.arm64 for linux/amd64 (from an amd64 bookworm stand-in).
image-check-amd64: venv
	PY=$(PY) KWS_IMAGE_PLATFORM=linux/amd64 bash deploy/image_check.sh

lint-deploy: venv
	PY=$(PY) bash deploy/lint.sh
