#!/usr/bin/env bash
# Install the kws-edge runtime on Raspberry Pi OS (bookworm, 64-bit) or any Debian/Ubuntu arm64.
#
#   sudo deploy/install-pi.sh [options] [SOURCE]
#
# SOURCE is what pip installs: a kws-edge wheel (from a GitHub release or `python -m pip
# wheel --no-deps .`), a source checkout, or a requirement; default: the checkout holding
# this script. It creates a virtual environment, installs SOURCE with its extras into it
# (ai-edge-litert by default; --tflite-runtime for the tflite-runtime fallback), creates the
# `kws` system user and installs, but does not start, the systemd units.
#
# Options:
#   --venv DIR          virtual environment (default /opt/kws-edge)
#   --extras LIST       pip extras (default edge,serve)
#   --tflite-runtime    use tflite-runtime 2.14 (needs numpy<2) instead of ai-edge-litert
#   --no-systemd        no user, no units (containers, chroots, CI)
#   --no-apt            do not apt-get install anything
#   --enable UNIT       also `systemctl enable --now` kws-edge-serve or kws-edge-listen
#                       (kws-edge-listen adds the mic extra and libportaudio2)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv=/opt/kws-edge
extras=edge,serve
tflite_runtime=0
systemd=1
apt=1
enable=""
source=""

usage() { sed -n '2,19s/^# \{0,1\}//p' "$0"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --venv) venv="$2"; shift 2 ;;
    --extras) extras="$2"; shift 2 ;;
    --tflite-runtime) tflite_runtime=1; shift ;;
    --no-systemd) systemd=0; shift ;;
    --no-apt) apt=0; shift ;;
    --enable) enable="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "install-pi.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) source="$1"; shift ;;
  esac
done
[ -n "$source" ] || source="$(dirname "$here")"
case "${enable%.service}" in
  "" | kws-edge-serve) ;;
  kws-edge-listen) [ "${extras#*mic}" != "$extras" ] || extras="$extras,mic" ;;
  *) echo "install-pi.sh: --enable takes kws-edge-serve or kws-edge-listen" >&2; exit 2 ;;
esac

say() { printf '==> %s\n' "$*"; }

# 1. System packages: Python's venv module and PortAudio (for `kws-edge listen`).
if [ "$apt" = 1 ] && command -v apt-get >/dev/null; then
  pkgs=()
  python3 -c 'import venv, ensurepip' 2>/dev/null || pkgs+=(python3-venv)
  if [ "${extras#*mic}" != "$extras" ]; then
    pkgs+=(libportaudio2)  # what sounddevice (the mic extra) loads
  fi
  if [ ${#pkgs[@]} -gt 0 ]; then
    say "apt-get install ${pkgs[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"
  fi
fi

# 2. The virtual environment and the runtime.
say "virtual environment $venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip

if [ -e "$source" ]; then
  target="$(cd "$(dirname "$source")" && pwd)/$(basename "$source")"
else
  target="$source"  # a requirement, e.g. kws-edge==0.1.0
fi
if [ "$tflite_runtime" = 1 ]; then
  # tflite-runtime 2.14 is built against numpy 1.x; its aarch64 wheels need glibc 2.34
  # (bookworm has 2.36). The [edge] extra would pull ai-edge-litert, so it is left out.
  extras="$(printf '%s' "$extras" | tr ',' '\n' | { grep -vx edge || true; } | paste -sd, -)"
  say "installing tflite-runtime 2.14 (numpy<2)"
  "$venv/bin/python" -m pip install -q "numpy>=1.23,<2" "tflite-runtime==2.14.*"
fi
spec="$target"
[ -n "$extras" ] && spec="${target}[${extras}]"
say "pip install $spec"
if [ "$tflite_runtime" = 1 ]; then
  "$venv/bin/python" -m pip install -q "$spec" "numpy<2"
else
  "$venv/bin/python" -m pip install -q "$spec"
fi
if [ -e "$source" ]; then
  # A rebuilt wheel or checkout keeps its version number: make sure it is the one installed.
  "$venv/bin/python" -m pip install -q --no-deps --force-reinstall "$target"
fi
"$venv/bin/kws-edge" --help >/dev/null
say "installed: $venv/bin/kws-edge"

# 3. A system user and the systemd units.
if [ "$systemd" = 1 ] && command -v systemctl >/dev/null; then
  if ! id kws >/dev/null 2>&1; then
    say "creating system user kws (groups: audio)"
    useradd --system --home-dir /var/lib/kws-edge --create-home --shell /usr/sbin/nologin kws
  fi
  usermod -a -G audio kws || true
  for unit in kws-edge-serve.service kws-edge-listen.service; do
    sed "s#/opt/kws-edge#$venv#g" "$here/$unit" > "/etc/systemd/system/$unit"
  done
  if [ ! -f /etc/default/kws-edge ]; then
    token="$("$venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(24))')"
    (umask 077; cat > /etc/default/kws-edge <<EOF
# Settings for kws-edge-serve.service and kws-edge-listen.service.
# KWS_MODEL=/var/lib/kws-edge/kws_int8.tflite   # default: the model shipped in the package
# The API answers on this machine only. To open it to the LAN, use the two lines below
# instead (clients then send the header 'Authorization: Bearer <KWS_API_TOKEN>'):
#KWS_SERVE_ARGS=--host 0.0.0.0 --port 8080
#KWS_API_TOKEN=$token
KWS_SERVE_ARGS=--port 8080
# e.g. --keywords yes,no --exec /usr/local/bin/on-keyword --post http://127.0.0.1:9000/hook
KWS_LISTEN_ARGS=
EOF
    )
  fi
  systemctl daemon-reload
  say "units installed: kws-edge-serve.service, kws-edge-listen.service (settings: /etc/default/kws-edge)"
  if [ -n "$enable" ]; then
    systemctl enable --now "${enable%.service}.service"
  fi
fi
say "check it: $venv/bin/kws-edge info && $venv/bin/kws-edge bench"
