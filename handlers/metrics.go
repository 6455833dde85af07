package handlers

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dsar-project/dsar/app/metrics"
	"github.com/dsar-project/dsar/handlers/httpkit"
)

// metricsHandler serves g in the Prometheus text format. With a token, it
// asks for "Authorization: Bearer <token>" first.
func metricsHandler(g prometheus.Gatherer, token string, log *slog.Logger) gin.HandlerFunc {
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog: promLog{log},
		// A collector that fails (Redis down) leaves the others served.
		// No MaxRequestsInFlight or Timeout: their 503s would not be
		// problems; the store is read once per metrics.StatsOptions.Every, within
		// metrics.StatsOptions.Timeout, whatever the number of scrapes.
		ErrorHandling: promhttp.ContinueOnError,
	})
	want := sha256.Sum256([]byte(token))
	return func(c *gin.Context) {
		if token != "" {
			secret, given := httpkit.BearerToken(c)
			got := sha256.Sum256([]byte(secret))
			if !given || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				c.Header("WWW-Authenticate", `Bearer realm="dsar-metrics"`)
				httpkit.Abort(c, httpkit.Problem{Status: http.StatusUnauthorized, Detail: "Send the metrics token as Authorization: Bearer <token>."})
				return
			}
		}
		h.ServeHTTP(c.Writer, c.Request)
	}
}

// promLog passes promhttp's errors to the log.
type promLog struct{ log *slog.Logger }

func (l promLog) Println(v ...any) {
	l.log.Error("metrics: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

// defaultMetrics is what /metrics serves when Deps.Metrics is nil: the
// statistics of the store, if any.
func defaultMetrics(d Deps) prometheus.Gatherer {
	reg := prometheus.NewRegistry()
	if d.Store != nil {
		reg.MustRegister(metrics.NewStatsCollector(d.Store, metrics.StatsOptions{Now: d.Now, Log: d.Log}))
	}
	return reg
}
