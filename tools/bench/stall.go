package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// stalls is what the stall probe saw: one busy thread per CPU, each reading
// the clock in a tight loop; a gap between two readings above stallGap is
// time the thread did not run although it never blocked. On a machine of
// its own that is a fraction of a percent (interrupts, the odd GC); on a
// virtual machine whose host is busy it is the time the host gave the CPU
// to someone else, which no figure from /proc inside the guest shows.
// Every latency below inherits those pauses, the ceiling's as much as
// alertmedic's, so the probe runs before and after the scenarios and its
// figures go next to theirs.
type stalls struct {
	threads int
	took    time.Duration
	lost    time.Duration // summed over the threads
	worst   time.Duration
}

const stallGap = 200 * time.Microsecond

// stallProbe is how long each probe runs.
const stallProbe = 3 * time.Second

// stallNoisy: past this share, or a pause past stallNoisyPause, the report
// says the host paused the machine.
const (
	stallNoisy      = 1.0
	stallNoisyPause = 5 * time.Millisecond
)

func (s stalls) noisy() bool { return s.share() >= stallNoisy || s.worst >= stallNoisyPause }

func probeStalls(d time.Duration) stalls {
	n := runtime.NumCPU()
	var mu sync.Mutex
	s := stalls{threads: n, took: d}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var lost, worst time.Duration
			last := time.Now()
			end := last.Add(d)
			for {
				now := time.Now()
				if gap := now.Sub(last); gap > stallGap {
					lost += gap
					worst = max(worst, gap)
				}
				if now.After(end) {
					break
				}
				last = now
			}
			mu.Lock()
			s.lost += lost
			s.worst = max(s.worst, worst)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return s
}

// share is the lost time as a share of the threads' time, in percent.
func (s stalls) share() float64 {
	if s.threads == 0 || s.took == 0 {
		return 0
	}
	return 100 * float64(s.lost) / (float64(s.threads) * float64(s.took))
}

func (s stalls) String() string {
	if s.threads == 0 {
		return "not probed"
	}
	return fmt.Sprintf("%.1f %% of the time lost, worst pause %s", s.share(), ms(s.worst))
}
