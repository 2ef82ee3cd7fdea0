#!/usr/bin/env bash
# Builds livegrid, generates a 10 s 1080p30 test clip and transcodes it into
# the default ladder, then prints where the HLS and DASH output is.
set -euo pipefail
cd "$(dirname "$0")/.."

data=${LIVEGRID_DATA_DIR:-./data}
mkdir -p bin "$data/demo"
go build -o bin/livegrid ./cmd/livegrid

src="$data/demo/source.mp4"
if [ ! -s "$src" ]; then
  echo "demo: generating a 10 s 1080p30 clip with ffmpeg" >&2
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i testsrc2=size=1920x1080:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t 10 -c:v libx264 -preset veryfast -g 60 -pix_fmt yuv420p -c:a aac -b:a 128k "$src.part.mp4"
  mv "$src.part.mp4" "$src"
fi

bin/livegrid encoders
echo
rm -rf "$data/demo/out"
bin/livegrid transcode --profile default --in "$src" --out "$data/demo/out"
echo
echo "Play it:   ffplay $data/demo/out/index.m3u8"
echo "Or serve:  (cd $data/demo/out && python3 -m http.server 8000)  then open http://localhost:8000/index.m3u8 in an HLS player"
