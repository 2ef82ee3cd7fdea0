// Package bench holds livegrid's capacity-planning suites: the report
// model, statistics, knee finding and the table, JSON and HTML renderings
// that every suite shares, with SVG charts, the progress display, /proc
// sampling and an HLS playlist reader. It is CGO-free; the suites live in
// sub-packages: bench/transcodebench (drives the transcode engine, cgo),
// bench/fanoutbench (viewers against an edge) and bench/latencybench
// (publish → playable latency).
package bench
