package httpkit

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
)

// WriteZip streams an export as the response: application/zip, as an
// attachment named e.Filename(). Once the headers are sent, a failure can
// only cut the stream, so the client sees a broken zip rather than a
// complete-looking one.
func WriteZip(c *gin.Context, e *app.Export) {
	c.Header("Content-Type", "application/zip")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, e.Filename()))
	c.Status(http.StatusOK)
	if err := e.WriteZip(c.Request.Context(), c.Writer); err != nil {
		panic(http.ErrAbortHandler)
	}
}
