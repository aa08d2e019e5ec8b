package store

import (
	"math"
	"time"
)

// GCRA decides one request against a rate limit by the generic cell rate
// algorithm: tat is the group's theoretical arrival time (zero for a group
// never seen). It returns whether the request may go, the new tat to keep
// (unchanged when refused), and when a refused request may try again. Both
// backends decide with this arithmetic (store/redis in Lua), so a limit
// means the same on each.
//
// A limit of PerSecond with Burst lets Burst requests through at once, then
// one per 1/PerSecond; a Burst below 1 counts as 1.
func GCRA(tat, now time.Time, perSecond float64, burst int) (ok bool, next, retryAt time.Time) {
	if perSecond <= 0 {
		return true, tat, time.Time{}
	}
	interval := Interval(perSecond)
	tau := time.Duration(max(burst, 1)-1) * interval
	t := tat
	if t.Before(now) {
		t = now
	}
	if t.Sub(now) > tau {
		return false, tat, t.Add(-tau)
	}
	return true, t.Add(interval), time.Time{}
}

// Interval is the time between requests at perSecond, to the millisecond
// (the Redis script keeps times in milliseconds), never below 1ms.
func Interval(perSecond float64) time.Duration {
	ms := math.Ceil(1000 / perSecond)
	return time.Duration(max(ms, 1)) * time.Millisecond
}
