package receiver

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog"
)

// Health statuses, as the extraction service's own health API spells them.
const (
	statusHealthy   = "healthy"
	statusUnhealthy = "unhealthy"
)

const probeTimeout = 2 * time.Second

func (r *Receiver) healthy(c *gin.Context) {
	c.String(http.StatusOK, "alertmedic is Healthy.\n")
}

// ready fails while the store is unreachable, so a load balancer sends
// Alertmanager's retries to a replica that can queue them.
func (r *Receiver) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), probeTimeout)
	defer cancel()
	if err := r.o.Store.Ping(ctx); err != nil {
		c.String(http.StatusServiceUnavailable, "alertmedic is not ready: store unreachable.\n")
		return
	}
	c.String(http.StatusOK, "alertmedic is Ready.\n")
}

type healthBody struct {
	Status    string `json:"status"`
	Timestamp string `json:"timestamp"`
	Version   string `json:"version"`
	Uptime    string `json:"uptime"`
}

type storeHealth struct {
	Status       string         `json:"status"`
	Type         string         `json:"type"`
	ResponseTime string         `json:"response_time"`
	Error        string         `json:"error,omitempty"`
	Stats        map[string]int `json:"stats,omitempty"`
}

type queueHealth struct {
	Depth    int64  `json:"depth"`
	Capacity int    `json:"capacity"`
	Usage    string `json:"usage"`
}

type detailedBody struct {
	healthBody
	Services  map[string]storeHealth `json:"services"`
	Queue     *queueHealth           `json:"queue,omitempty"`
	Resources resources              `json:"resources"`
}

type resources struct {
	CPUSeconds    float64 `json:"cpu_seconds"`
	MemoryRSS     string  `json:"memory_rss,omitempty"`
	HeapInUse     string  `json:"heap_in_use"`
	Goroutines    int     `json:"goroutines"`
	GOMAXPROCS    int     `json:"gomaxprocs"`
	OpenFDs       int     `json:"open_fds,omitempty"`
	MemoryRSSByte uint64  `json:"memory_rss_bytes,omitempty"`
}

func (r *Receiver) basic() healthBody {
	now := r.o.Now()
	return healthBody{
		Status:    statusHealthy,
		Timestamp: now.UTC().Format(time.RFC3339),
		Version:   r.o.Version,
		Uptime:    formatUptime(now.Sub(r.started)),
	}
}

// health answers 503 when the store is unreachable: that replica cannot
// accept alerts.
func (r *Receiver) health(c *gin.Context) {
	b := r.basic()
	ctx, cancel := context.WithTimeout(c.Request.Context(), probeTimeout)
	defer cancel()
	code := http.StatusOK
	if err := r.o.Store.Ping(ctx); err != nil {
		b.Status, code = statusUnhealthy, http.StatusServiceUnavailable
	}
	c.JSON(code, b)
}

func (r *Receiver) healthDetailed(c *gin.Context) {
	b := detailedBody{healthBody: r.basic(), Services: map[string]storeHealth{}}
	ctx, cancel := context.WithTimeout(c.Request.Context(), probeTimeout)
	defer cancel()

	sh := storeHealth{Status: statusHealthy, Type: r.o.StoreType}
	start := time.Now()
	err := r.o.Store.Ping(ctx)
	sh.ResponseTime = time.Since(start).Round(time.Microsecond).String()
	code := http.StatusOK
	if err != nil {
		// The error text names the store's address at most, never its
		// credentials: go-redis does not put the URL's password in errors.
		sh.Status, sh.Error = statusUnhealthy, err.Error()
		b.Status, code = statusUnhealthy, http.StatusServiceUnavailable
		zerolog.Ctx(c.Request.Context()).Warn().Err(err).Msg("store ping failed")
	} else if d, err := r.o.Store.Depth(ctx); err == nil {
		q := &queueHealth{Depth: d, Capacity: r.o.Capacity}
		if r.o.Capacity > 0 {
			q.Usage = fmt.Sprintf("%.1f%%", float64(d)*100/float64(r.o.Capacity))
		}
		b.Queue = q
	}
	if r.o.StoreStats != nil {
		sh.Stats = r.o.StoreStats()
	}
	b.Services["store"] = sh
	b.Resources = readResources()
	c.JSON(code, b)
}

func readResources() resources {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res := resources{
		HeapInUse:  formatBytes(int64(ms.HeapInuse)),
		Goroutines: runtime.NumGoroutine(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		res.CPUSeconds = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	if rss := rssBytes(); rss > 0 {
		res.MemoryRSSByte = rss
		res.MemoryRSS = formatBytes(int64(rss))
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		res.OpenFDs = len(fds)
	}
	return res
}

// rssBytes reads the resident set size where /proc exists (Linux), else 0.
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// formatUptime writes a duration as the extraction service's health API
// does: "2d 14h 23m".
func formatUptime(d time.Duration) string {
	d = d.Round(time.Minute)
	days := int(d / (24 * time.Hour))
	d -= time.Duration(days) * 24 * time.Hour
	h := int(d / time.Hour)
	m := int((d - time.Duration(h)*time.Hour) / time.Minute)
	if days > 0 {
		return fmt.Sprintf("%dd %dh %dm", days, h, m)
	}
	if h > 0 {
		return fmt.Sprintf("%dh %dm", h, m)
	}
	return fmt.Sprintf("%dm", m)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (r *Receiver) reload(c *gin.Context) {
	if r.o.Reload == nil {
		fail(c, http.StatusNotImplemented, "reload is not available")
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 30*time.Second)
	defer cancel()
	if err := r.o.Reload(ctx); err != nil {
		fail(c, http.StatusInternalServerError, "reload failed, the previous configuration stays in force: "+err.Error())
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "success"})
}
