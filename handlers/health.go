package handlers

import (
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsar-project/dsar/handlers/httpkit"
)

// HealthDeps is what the health server of a process without the API (a
// worker, a scheduler) needs.
type HealthDeps struct {
	// Ready lists what /readyz checks.
	Ready []Check
	// Metrics is what GET /metrics serves.
	Metrics prometheus.Gatherer
	// MetricsToken, when set, is the bearer token GET /metrics asks for.
	MetricsToken string
	Log          *slog.Logger
}

// NewHealth returns the handler a worker or scheduler serves on
// DSAR_HEALTH_ADDR: GET /healthz (the process answers), /readyz (200 only
// while every check in d.Ready answers, else 503 naming the one that does
// not) and /metrics, the same three the API serves; every other path is a
// 404 problem. Probes are not access-logged: one every few seconds would
// drown the log.
func NewHealth(d HealthDeps) http.Handler {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.Use(httpkit.RequestID(), httpkit.SecurityHeaders(), httpkit.Recovery(d.Log))
	r.NoRoute(func(c *gin.Context) {
		httpkit.Abort(c, httpkit.Problem{Status: http.StatusNotFound, Detail: "This address serves /healthz, /readyz and /metrics only."})
	})
	r.NoMethod(func(c *gin.Context) {
		httpkit.Abort(c, httpkit.Problem{Status: http.StatusMethodNotAllowed, Detail: "This route does not take this method."})
	})
	r.GET("/healthz", healthz)
	r.GET("/readyz", readyz(d.Ready, &httpkit.StorageWatch{}, nil))
	if d.Metrics == nil {
		d.Metrics = prometheus.NewRegistry()
	}
	r.GET("/metrics", metricsHandler(d.Metrics, d.MetricsToken, d.Log))
	return r
}
