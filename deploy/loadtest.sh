#!/usr/bin/env bash
# The edge load test of issue 4: a standalone origin, one edge in front of
# it, a generated live stream, then VIEWERS HTTP-FLV viewers and VIEWERS HLS
# viewers through the edge (livegrid bench fanout, sampling the edge's CPU
# and memory), and the edge's HLS segment throughput against nginx serving
# the same files, measured with wrk in the same run. Everything on
# loopback. Installs nginx-light and wrk when missing.
#
#   deploy/loadtest.sh                 # 500 + 500 viewers, 30 s each
#   VIEWERS=100 DURATION=15s deploy/loadtest.sh
#
# Results: $OUT (default bench/results/loadtest-DATE) holds the JSON and HTML
# reports of both fan-out runs, wrk's output and summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

viewers=${VIEWERS:-500}
duration=${DURATION:-30s}
out=${OUT:-bench/results/loadtest-$(date -u +%Y%m%dT%H%M%SZ)}
origin_http=127.0.0.1:18080 origin_rtmp=127.0.0.1:11935
edge_http=127.0.0.1:18081 edge_rtmp=127.0.0.1:11936 nginx_http=127.0.0.1:18082

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
if ((${#need[@]})); then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "loadtest: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

mkdir -p bin "$out"
go build -o bin/livegrid ./cmd/livegrid
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_ready() {
  for _ in $(seq 1 150); do curl -sf "http://$1/readyz" >/dev/null && return 0; sleep 0.2; done
  echo "loadtest: $1 not ready" >&2; exit 1
}

echo "loadtest: origin on $origin_http, edge on $edge_http, $viewers viewers per protocol, $duration each" >&2
LIVEGRID_LOG_LEVEL=warn LIVEGRID_TRANSCODE_PROFILE=mobile bin/livegrid standalone --data-dir "$work/origin" \
  --http-addr "$origin_http" --rtmp-addr "$origin_rtmp" 2>"$out/origin.log" &
pids+=($!)
wait_ready "$origin_http"
bin/livegrid edge --origin "http://$origin_http" --http-addr "$edge_http" --rtmp-addr "$edge_rtmp" \
  --log-level warn 2>"$out/edge.log" &
edge_pid=$!
pids+=($edge_pid)
wait_ready "$edge_http"

ffmpeg -hide_banner -loglevel error -re \
  -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
  -c:v libx264 -preset ultrafast -g 60 -pix_fmt yuv420p -b:v 800k -c:a aac -b:a 96k \
  -f flv "rtmp://$origin_rtmp/live/load" 2>"$out/publish.log" &
pids+=($!)
for _ in $(seq 1 150); do
  curl -sf "http://$edge_http/live/load/index.m3u8" | grep -q m3u8 && break
  sleep 0.2
done
sleep 6 # a few segments in the window

for proto in flv hls; do
  bin/livegrid bench fanout --edge "http://$edge_http" --stream load --protocol "$proto" \
    --viewers "$viewers" --ramp 10s --duration "$duration" --pid "$edge_pid" --progress log \
    --json "$out/fanout-$proto.json" --html "$out/fanout-$proto.html" | tee "$out/fanout-$proto.txt"
done

# Segment throughput: one media segment, fetched by wrk through the edge
# (a cache hit after the first request) and from nginx serving the same
# bytes from disk.
rendition=$(curl -sf "http://$edge_http/live/load/index.m3u8" | grep -m1 '^[^#].*index.m3u8' | cut -d/ -f1)
seg=$(curl -sf "http://$edge_http/live/load/$rendition/index.m3u8" | grep -m1 '\.m4s')
mkdir -p "$work/www/live/load/$rendition"
curl -sf -o "$work/www/live/load/$rendition/$seg" "http://$edge_http/live/load/$rendition/$seg"
cat >"$work/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  types { video/iso.segment m4s; }
  server { listen $nginx_http; root $work/www; }
}
CONF
chmod 755 "$work" && chmod -R a+rX "$work/www" # nginx's workers run as www-data
nginx -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)
sleep 1
for host in "$edge_http" "$nginx_http"; do
  if ! curl -sf -o /dev/null "http://$host/live/load/$rendition/$seg"; then
    echo "loadtest: $host does not serve /live/load/$rendition/$seg" >&2; exit 1
  fi
done
size=$(stat -c %s "$work/www/live/load/$rendition/$seg")
for target in edge nginx; do
  host=$edge_http; [ "$target" = nginx ] && host=$nginx_http
  wrk -t2 -c64 -d10s "http://$host/live/load/$rendition/$seg" | tee "$out/wrk-$target.txt"
done
for target in edge nginx; do
  if grep -q "Non-2xx" "$out/wrk-$target.txt"; then
    echo "loadtest: $target answered errors under wrk; its figure is void" >&2; exit 1
  fi
done
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
edge_rps=$(rps "$out/wrk-edge.txt") nginx_rps=$(rps "$out/wrk-nginx.txt")
ratio=$(awk -v a="$edge_rps" -v b="$nginx_rps" 'BEGIN { printf "%.2f", a / b }')

{
  echo "livegrid edge load test, $(date -u +%FT%TZ), $(nproc) cores, $viewers viewers per protocol"
  for proto in flv hls; do
    echo "--- $proto"
    cat "$out/fanout-$proto.txt"
  done
  echo "--- HLS segment throughput ($size bytes, wrk -t2 -c64 -d10s)"
  echo "edge:  $edge_rps req/s"
  echo "nginx: $nginx_rps req/s"
  echo "edge/nginx: $ratio"
} >"$out/summary.txt"
echo
cat "$out/summary.txt"
echo "loadtest: reports in $out" >&2
