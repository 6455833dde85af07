package agentapi

import (
	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/handlers/httpkit"
)

// export streams a completed access request's data as a zip, the access
// package (app.Export.WriteZip: manifest.json, summary.json, a JSON and a
// CSV file per connector and collection, index.html), written straight to
// the response.
func (a *requestsAPI) export(c *gin.Context) {
	e, err := a.app.Export(c.Request.Context(), c.Param("id"), httpkit.Caller(c))
	if err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	httpkit.WriteZip(c, e)
}
