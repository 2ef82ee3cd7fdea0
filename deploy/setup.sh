#!/usr/bin/env bash
# Installs what livegrid's build and tests need on Debian 12: FFmpeg 5.1
# development libraries (for go-astiav), the ffmpeg/ffprobe command line
# (fixtures and the speed reference), pkg-config and redis-server, then the
# Go modules, a cached MinIO server build (deploy/minio.sh), and Chromium
# with e2e/player's npm packages for the browser player test. Idempotent,
# and quick when everything is already there.
set -euo pipefail

packages=(
  ffmpeg pkg-config gcc curl
  libavcodec-dev libavformat-dev libavutil-dev libavfilter-dev libavdevice-dev
  libswscale-dev libswresample-dev libpostproc-dev
  redis-server
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: system packages present" >&2
fi

# go-astiav v0.16.0 is the last release for FFmpeg 5.1: refuse anything else early.
ver=$(pkg-config --modversion libavcodec)
case "$ver" in
  59.*) ;;
  *) echo "setup: libavcodec $ver found, livegrid needs FFmpeg 5.1 (libavcodec 59)" >&2; exit 1 ;;
esac

cd "$(dirname "$0")/.."
go mod download
# The object-store tests run against a real MinIO server, built once and cached.
bash deploy/minio.sh >/dev/null

# The browser player test (coordinator/player_test.go) drives Debian's
# Chromium with playwright-core, hls.js, dash.js and mpegts.js from
# e2e/player; nothing downloads a browser of its own.
setup_player_e2e() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  if [ ! -x /usr/bin/chromium ]; then
    echo "setup: installing chromium" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
  # -nt is also true when node_modules has no lock yet (never installed).
  if [ e2e/player/package-lock.json -nt e2e/player/node_modules/.package-lock.json ]; then
    if ! command -v npm >/dev/null; then
      echo "setup: npm not found: install Node.js 20+ for the browser player test" >&2
      return
    fi
    echo "setup: npm ci in e2e/player" >&2
    (cd e2e/player && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}
setup_player_e2e
echo "setup: ready (FFmpeg libavcodec $ver, $(go version | cut -d' ' -f3))" >&2
