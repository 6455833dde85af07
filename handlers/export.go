package handlers

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
)

// export streams a completed access request's data as a zip
// (app.Export): manifest.json, then one JSON array file per connector and
// collection, written straight to the response.
func (a *requestsAPI) export(c *gin.Context) {
	e, err := a.app.Export(c.Request.Context(), c.Param("id"), httpkit.Caller(c))
	if err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	writeZip(c, e)
}

// streamExport answers with the export of req: 409 unless it is a completed
// access request.
func streamExport(c *gin.Context, svc *app.Service, log *slog.Logger, req *dsr.Request) {
	e, err := svc.ExportOf(c.Request.Context(), req, httpkit.Caller(c))
	if err != nil {
		httpkit.Error(c, log, err)
		return
	}
	writeZip(c, e)
}

// writeZip streams e as the response. Once the headers are sent, a failure
// can only cut the stream, so the client sees a broken zip rather than a
// complete-looking one.
func writeZip(c *gin.Context, e *app.Export) {
	c.Header("Content-Type", "application/zip")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, e.Filename()))
	c.Status(http.StatusOK)
	if err := e.WriteZip(c.Request.Context(), c.Writer); err != nil {
		panic(http.ErrAbortHandler)
	}
}
