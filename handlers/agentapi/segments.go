package agentapi

import "github.com/gin-gonic/gin"

// segments answers the segmentation report of the removals made in
// [from, to) (app.Service.SegmentReport), its window given as the
// summary's is.
func (a *requestsAPI) segments(c *gin.Context) {
	from, to, ok := a.window(c)
	if !ok {
		return
	}
	rep, err := a.app.SegmentReport(c.Request.Context(), from, to)
	a.answer(c, rep, err)
}
