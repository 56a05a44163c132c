#!/usr/bin/env bash
# make verify-arm64: the runtime on arm64 Python (qemu-user-static) gives the x86 results.
#
# 1. builds (once; cached in ${KWS_CACHE:-~/.cache/kws-edge}/arm64-rootfs) a Debian bookworm
#    arm64 root filesystem with debootstrap;
# 2. builds the kws-edge wheel and installs it there with deploy/install-pi.sh, as a Pi user
#    would: a venv with the [edge] extra (ai-edge-litert) and a second venv with the
#    tflite-runtime 2.14 fallback (numpy<2);
# 3. runs `kws-edge predict --json` and `kws-edge evaluate --json` on the same clips with the
#    x86 venv and with both arm64 venvs, and compares them (deploy/compare_results.py: labels
#    equal, int8 probabilities within one output quantisation step). The strict comparison
#    runs TFLite's reference kernels (KWS_OP_RESOLVER=ref), which are bit-exact across CPUs;
#    the default optimised (XNNPACK/NEON) kernels are compared too, and may differ by a few
#    int8 steps (reported, with equal labels required only within KWS_ARM64_DEFAULT_STEPS).
#
# Needs root, debootstrap, qemu-user-static, binfmt-support; network for apt and PyPI (or a
# warm cache). Environment: PY (x86 python with kws-edge, default .venv/bin/python),
# KWS_DATA_DIR (Speech Commands layout, default ../shared/data/speech_commands_mini),
# KWS_ARM64_CLIPS (clips to compare, default 48), KWS_ARM64_STEPS (int8 output steps allowed,
# default 1), KWS_CACHE, DEBIAN_MIRROR. Without data it makes synthetic clips.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=deploy/rootfs.sh
. deploy/rootfs.sh

PY="${PY:-$root/.venv/bin/python}"
PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"  # absolute: later steps cd elsewhere
DATA="${KWS_DATA_DIR:-$root/../shared/data/speech_commands_mini}"
N_CLIPS="${KWS_ARM64_CLIPS:-48}"
STEPS="${KWS_ARM64_STEPS:-1}"   # int8 output steps allowed between x86 and arm64
DEFAULT_STEPS="${KWS_ARM64_DEFAULT_STEPS:-24}"  # the same with the default kernels (18 measured)
export KWS_OP_RESOLVER="${KWS_OP_RESOLVER:-ref}"
export OPENBLAS_NUM_THREADS=1 TF_CPP_MIN_LOG_LEVEL=2
[ "$(id -u)" = 0 ] || { echo "verify-arm64: needs root (debootstrap, chroot, binfmt)" >&2; exit 2; }
[ -x "$PY" ] || { echo "verify-arm64: no $PY (make venv)" >&2; exit 2; }

declare -A timing
t_start=$SECONDS

# -- 1. root filesystem --------------------------------------------------------------------
t0=$SECONDS
ensure_rootfs
timing[rootfs]=$((SECONDS - t0))
in_rootfs python3 -c 'import platform, sys; print("arm64 python", sys.version.split()[0], platform.machine())'

work_rel=tmp/kws-verify          # inside the rootfs: /tmp/kws-verify
work="$ROOTFS/$work_rel"
rm -rf "$work"
mkdir -p "$work/dist" "$work/data" "$work/out" "$work/model"

# -- 2. what to install: the wheel and (when none is shipped yet) a model -------------------
log "building the kws-edge wheel"
"$PY" -m pip wheel -q --no-deps -w "$work/dist" "$root" >/dev/null
wheel="$(basename "$(ls "$work/dist"/kws_edge-*.whl)")"
log "wheel: $wheel"

model_args=()
if [ -f "$root/artifacts/kws_int8.tflite" ] \
   && "$PY" -c 'import sys, zipfile; sys.exit("edge_runtime/shipped/kws_int8.tflite" not in
        zipfile.ZipFile(sys.argv[1]).namelist())' "$work/dist/$wheel"; then
  log "model: the shipped artifacts/kws_int8.tflite (the package default)"
else
  log "model: none shipped in the wheel; building a small int8 model with TensorFlow (x86)"
  "$PY" - "$work/model" >"$work/model/build.log" 2>&1 <<'PYEOF'
import sys
from pathlib import Path

sys.path.insert(0, "tests")
from model_factory import build_models  # noqa: E402

print(build_models(Path(sys.argv[1]), name="verify")["int8"])
PYEOF
  [ -f "$work/model/verify_int8.tflite" ] || { tail -n 20 "$work/model/build.log" >&2; exit 1; }
  # Relative to the work folder, where both sides run (the paths differ inside the chroot).
  model_args=(--model model/verify_int8.tflite)
fi

# -- 3. the clips: the first N/12 of each class, sorted (deterministic) ----------------------
per_class=$(( (N_CLIPS + 11) / 12 ))
if [ ! -d "$DATA" ]; then
  # No real speech here (e.g. a fresh CI runner): synthetic 1 s clips in the same layout.
  log "no data at $DATA (KWS_DATA_DIR): using synthetic clips"
  DATA="$work/synthetic"
  "$PY" - "$DATA" "$per_class" <<'PYEOF'
import sys
import wave
from pathlib import Path

import numpy as np

out, per_class = Path(sys.argv[1]), int(sys.argv[2])
labels = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off",
          "stop", "go"]
rng = np.random.default_rng(0)
t = np.arange(16000) / 16000
for i, label in enumerate(labels):
    (out / label).mkdir(parents=True, exist_ok=True)
    for j in range(per_class):
        f0 = 120 + 60 * i + 7 * j
        x = 0.3 * np.sin(2 * np.pi * f0 * t) * np.hanning(t.size) + 0.01 * rng.standard_normal(t.size)
        with wave.open(str(out / label / f"synth{j:02d}_nohash_0.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
PYEOF
fi
for dir in "$DATA"/*/; do
  label="$(basename "$dir")"
  case "$label" in _background_noise_) continue ;; esac
  mkdir -p "$work/data/$label"
  mapfile -t files < <(find "$dir" -maxdepth 1 -name '*.wav' | sort)
  [ ${#files[@]} -eq 0 ] || cp -t "$work/data/$label" "${files[@]:0:$per_class}"
done
n=$(find "$work/data" -name '*.wav' | wc -l)
log "clips: $n from $DATA"
mapfile -t clips < <(cd "$work" && find data -name '*.wav' | sort)

# -- 4. x86 reference ------------------------------------------------------------------------
log "x86: predict + evaluate ($("$PY" -c 'import platform; print(platform.machine())'))"
xbin="$(dirname "$PY")/kws-edge"
(cd "$work" && "$xbin" predict --json --top-k 12 "${model_args[@]}" "${clips[@]}") \
  > "$work/out/x86.predict.json"
(cd "$work" && "$xbin" evaluate --json --data data "${model_args[@]}") \
  > "$work/out/x86.evaluate.json"
(cd "$work" && KWS_OP_RESOLVER=default "$xbin" predict --json --top-k 12 "${model_args[@]}" \
  "${clips[@]}") > "$work/out/x86-default-kernels.predict.json"
x86_backend="$(cd "$work" && "$xbin" info --json "${model_args[@]}" | "$PY" -c \
  'import json, sys; print(json.load(sys.stdin)["interpreter"])')"

# -- 5. arm64: install (deploy/install-pi.sh) and run, for each interpreter -------------------
cp deploy/install-pi.sh "$work/install-pi.sh"
manifest="$work/model/verify_int8.manifest.json"
[ ${#model_args[@]} -gt 0 ] || manifest="$root/artifacts/kws_int8.manifest.json"
status=0
for backend in litert tflite_runtime; do
  venv="/opt/kws-verify-$backend"
  opts=(--venv "$venv" --no-systemd --no-apt)
  [ "$backend" = tflite_runtime ] && opts+=(--tflite-runtime --extras "")
  [ "$backend" = litert ] && opts+=(--extras edge)
  log "arm64 [$backend]: install-pi.sh ${opts[*]} $wheel"
  t0=$SECONDS
  in_rootfs rm -rf "$venv"
  in_rootfs bash "/$work_rel/install-pi.sh" "${opts[@]}" "/$work_rel/dist/$wheel"
  timing[install_$backend]=$((SECONDS - t0))

  run_arm() { in_rootfs /bin/sh -c 'cd /tmp/kws-verify && exec "$@"' sh \
      env KWS_INTERPRETER="$backend" KWS_OP_RESOLVER="${resolver:-$KWS_OP_RESOLVER}" \
      "$venv/bin/kws-edge" "$@"; }
  run_arm info --json "${model_args[@]}" > "$work/out/arm64-$backend.info.json"
  "$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(
      "arm64 interpreter:", d["interpreter"], "model sha256:", d["sha256"][:16])' \
    "$work/out/arm64-$backend.info.json"
  log "arm64 [$backend]: predict ($n clips)"
  t0=$SECONDS
  run_arm predict --json --top-k 12 "${model_args[@]}" "${clips[@]}" \
    > "$work/out/arm64-$backend.predict.json"
  timing[predict_$backend]=$((SECONDS - t0))
  log "arm64 [$backend]: evaluate"
  t0=$SECONDS
  run_arm evaluate --json --data data "${model_args[@]}" > "$work/out/arm64-$backend.evaluate.json"
  timing[evaluate_$backend]=$((SECONDS - t0))

  log "compare x86 [$x86_backend] with arm64 [$backend]"
  "$PY" deploy/compare_results.py --manifest "$manifest" --steps "$STEPS" \
    --predict "$work/out/x86.predict.json" "$work/out/arm64-$backend.predict.json" \
    --evaluate "$work/out/x86.evaluate.json" "$work/out/arm64-$backend.evaluate.json" \
    --expect-backend "$backend" --info "$work/out/arm64-$backend.info.json" || status=1
  log "arm64 [$backend]: predict with the default (optimised) kernels"
  resolver=default run_arm predict --json --top-k 12 "${model_args[@]}" "${clips[@]}" \
    > "$work/out/arm64-$backend-default-kernels.predict.json"
  "$PY" deploy/compare_results.py --manifest "$manifest" --steps "$DEFAULT_STEPS" \
    --predict "$work/out/x86-default-kernels.predict.json" \
    "$work/out/arm64-$backend-default-kernels.predict.json" || status=1
done

mkdir -p "$root/build/verify-arm64"
cp "$work"/out/*.json "$root/build/verify-arm64/"
{
  printf 'verify-arm64 timings (s):'
  for k in rootfs install_litert predict_litert evaluate_litert \
           install_tflite_runtime predict_tflite_runtime evaluate_tflite_runtime; do
    printf ' %s=%s' "$k" "${timing[$k]:-?}"
  done
  printf ' total=%s  (%s clips; results in build/verify-arm64/)\n' "$((SECONDS - t_start))" "$n"
} | tee "$root/build/verify-arm64/timings.txt"
if [ "$status" = 0 ]; then
  log "verify-arm64: OK (arm64 == x86 for litert and tflite_runtime)"
else
  log "verify-arm64: FAILED"
fi
exit "$status"
