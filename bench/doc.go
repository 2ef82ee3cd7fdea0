// Package bench holds livegrid's capacity-planning suites: the report
// model, statistics, knee finding and the table, JSON and HTML renderings
// that every suite shares. It is CGO-free; the suites that drive the
// transcode engine live in sub-packages (bench/transcodebench).
package bench
