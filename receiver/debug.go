package receiver

import (
	"net/http/pprof"

	"github.com/gin-gonic/gin"
)

// debugRoutes serves Go's runtime profiles under /debug/pprof, as
// Alertmanager and Prometheus do, behind web.read_auth like /metrics. The
// handlers are mounted one by one rather than through http.DefaultServeMux,
// so nothing else a library registers there becomes reachable.
// `/debug/pprof/heap?gc=1` runs a garbage collection before the profile:
// the way to read the live heap of a running daemon.
func (r *Receiver) debugRoutes(e *gin.Engine) {
	g := e.Group("/debug/pprof", r.readAuth)
	g.GET("/", gin.WrapF(pprof.Index))
	g.GET("/cmdline", gin.WrapF(pprof.Cmdline))
	g.GET("/profile", gin.WrapF(pprof.Profile))
	g.GET("/symbol", gin.WrapF(pprof.Symbol))
	g.POST("/symbol", gin.WrapF(pprof.Symbol))
	g.GET("/trace", gin.WrapF(pprof.Trace))
	for _, name := range []string{"allocs", "block", "goroutine", "heap", "mutex", "threadcreate"} {
		g.GET("/"+name, gin.WrapH(pprof.Handler(name)))
	}
}
