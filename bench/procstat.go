package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of utime and stime in /proc/PID/stat. The kernel fixes
// USER_HZ at 100 for user space on every architecture Linux ships.
const userHZ = 100

// ProcSample is this process's CPU time and resident memory at one moment.
type ProcSample struct {
	CPU      time.Duration // utime + stime, all threads
	RSSBytes int64
}

// ReadProc samples /proc/self/stat (CPU) and /proc/self/statm (RSS).
func ReadProc() (ProcSample, error) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return ProcSample{}, fmt.Errorf("bench: %w", err)
	}
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return ProcSample{}, fmt.Errorf("bench: %w", err)
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return ProcSample{}, err
	}
	rss, err := parseStatmRSS(statm, os.Getpagesize())
	if err != nil {
		return ProcSample{}, err
	}
	return ProcSample{CPU: cpu, RSSBytes: rss}, nil
}

// parseStatCPU returns utime + stime (fields 14 and 15) of a
// /proc/PID/stat line. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from its last ")".
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: /proc/self/stat: no command name")
	}
	f := bytes.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: /proc/self/stat: %d fields after the command name", len(f))
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: /proc/self/stat: bad utime %q or stime %q", f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// parseStatmRSS returns the resident set (field 2, in pages) of /proc/PID/statm.
func parseStatmRSS(statm []byte, pageSize int) (int64, error) {
	f := bytes.Fields(statm)
	if len(f) < 2 {
		return 0, fmt.Errorf("bench: /proc/self/statm: %d fields", len(f))
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bench: /proc/self/statm: bad resident %q", f[1])
	}
	return pages * int64(pageSize), nil
}
