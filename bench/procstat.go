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
func ReadProc() (ProcSample, error) { return readProc("/proc/self") }

// ReadProcPID samples another process, such as the edge a fan-out run
// loads: /proc/PID/stat (CPU of all its threads) and /proc/PID/statm (RSS).
func ReadProcPID(pid int) (ProcSample, error) {
	if pid <= 0 {
		return ProcSample{}, fmt.Errorf("bench: bad pid %d", pid)
	}
	return readProc("/proc/" + strconv.Itoa(pid))
}

func readProc(dir string) (ProcSample, error) {
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return ProcSample{}, fmt.Errorf("bench: %w", err)
	}
	statm, err := os.ReadFile(dir + "/statm")
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

// LoadAverage reads the 1, 5 and 15 minute load averages of
// /proc/loadavg: how busy the machine was besides the suite, for reports
// measured on shared machines. It returns nil when it cannot read them.
func LoadAverage() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	return parseLoadAvg(b)
}

func parseLoadAvg(b []byte) []float64 {
	f := bytes.Fields(b)
	if len(f) < 3 {
		return nil
	}
	out := make([]float64, 3)
	for i := range out {
		v, err := strconv.ParseFloat(string(f[i]), 64)
		if err != nil {
			return nil
		}
		out[i] = v
	}
	return out
}
