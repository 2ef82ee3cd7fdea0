#!/usr/bin/env bash
# Builds livegrid, starts it standalone (RTMP :1935, HTTP :8080, data in
# ./data) and publishes a generated 720p test stream to it over RTMP, then
# prints the URLs to open. Ctrl-C stops both. DEMO_SECONDS=N stops after N s.
set -euo pipefail
cd "$(dirname "$0")/.."

data=${LIVEGRID_DATA_DIR:-./data}
http=${LIVEGRID_HTTP_ADDR:-:8080}
rtmp=${LIVEGRID_RTMP_ADDR:-:1935}
mkdir -p bin "$data"
go build -o bin/livegrid ./cmd/livegrid

bin/livegrid standalone --data-dir "$data" --http-addr "$http" --rtmp-addr "$rtmp" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1${http#*:}/readyz" >/dev/null 2>&1 && break
  curl -sf "http://127.0.0.1:${http##*:}/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done

base="http://localhost:${http##*:}/live/demo"
cat <<MSG

livegrid standalone is running; publishing a test stream to rtmp://localhost:${rtmp##*:}/live/demo
  HLS:      $base/index.m3u8
  DASH:     $base/index.mpd
  HTTP-FLV: http://localhost:${http##*:}/live/demo.flv
  health:   http://localhost:${http##*:}/healthz
Play with: ffplay $base/index.m3u8   (the first segments appear after a few seconds)

MSG

duration=()
if [ -n "${DEMO_SECONDS:-}" ]; then duration=(-t "$DEMO_SECONDS"); fi
ffmpeg -hide_banner -loglevel error -re \
  -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
  "${duration[@]}" -c:v libx264 -preset veryfast -g 60 -pix_fmt yuv420p -c:a aac -b:a 128k \
  -f flv "rtmp://127.0.0.1:${rtmp##*:}/live/demo"
sleep 4 # let the last segments land
