package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"
)

// The machine is small and may be shared: other people's builds and tests
// take CPU from the server and the load generator alike. The bench cannot
// prevent that, so it measures it from /proc and reports it next to the
// numbers it spoiled, and waits a little for a quiet machine before each
// scenario.

// cpuSnap is a point in time of the machine's CPU counters (in clock ticks,
// all CPUs together) and of the processes the bench accounts for.
type cpuSnap struct {
	at          time.Time
	busy, total uint64
	procs       map[string]uint64
}

// cpuShare is how a span of time was spent, in percent of the whole machine.
type cpuShare struct {
	procs map[string]float64
	other float64
}

// snapCPU reads /proc/stat and the named processes; a process that has gone
// counts zero.
func snapCPU(pids map[string]int) cpuSnap {
	s := cpuSnap{at: time.Now(), procs: map[string]uint64{}}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		// cpu user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is already in user.
		for i := 1; i < len(f) && i <= 8; i++ {
			v, _ := strconv.ParseUint(f[i], 10, 64)
			s.total += v
			if i != 4 && i != 5 {
				s.busy += v
			}
		}
	}
	for name, pid := range pids {
		s.procs[name] = procTicks(pid)
	}
	return s
}

// procTicks is a process's user plus system time, all threads included.
func procTicks(pid int) uint64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces and parentheses: count fields from
	// the last ')'. utime and stime are fields 14 and 15 of the line.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st
}

// share is what happened between a and b.
func share(a, b cpuSnap) cpuShare {
	r := cpuShare{procs: map[string]float64{}}
	total := float64(b.total - a.total)
	if total <= 0 {
		return r
	}
	ours := 0.0
	for name, v := range b.procs {
		d := float64(0)
		if v >= a.procs[name] {
			d = float64(v - a.procs[name])
		}
		ours += d
		r.procs[name] = 100 * d / total
	}
	r.other = max(100*(float64(b.busy-a.busy)-ours)/total, 0)
	return r
}

// quietThreshold is the share of the machine that others may use before a
// scenario is delayed: more than that and they would be measured too.
const quietThreshold = 15.0

// waitQuiet waits, up to limit, until processes other than the bench's own
// use less than quietThreshold of the machine. It returns how long it waited
// and the last share seen.
func waitQuiet(ctx context.Context, pids map[string]int, limit time.Duration) (time.Duration, float64) {
	start := time.Now()
	for {
		a := snapCPU(pids)
		select {
		case <-ctx.Done():
			return time.Since(start), 0
		case <-time.After(500 * time.Millisecond):
		}
		other := share(a, snapCPU(pids)).other
		if other < quietThreshold || time.Since(start) >= limit {
			return time.Since(start), other
		}
	}
}
