package webkit

import (
	"io/fs"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// AssetsPath is where the static assets are served.
const AssetsPath = "/assets/"

// RegisterAssets serves the embedded assets under /assets/ (stylesheets,
// scripts, the favicon) and /assets/brand.css, the brand's colours. They
// hold nothing personal: caches may keep them an hour.
func (k *Kit) RegisterAssets(r gin.IRoutes) {
	sub, _ := fs.Sub(files, "assets")
	fsrv := http.StripPrefix(AssetsPath, http.FileServer(http.FS(sub)))
	brand := []byte(k.brand.CSS())
	started := time.Now()
	r.GET(AssetsPath+"*file", func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=3600")
		c.Header("X-Content-Type-Options", "nosniff")
		if c.Param("file") == "/brand.css" {
			c.Header("Last-Modified", started.UTC().Format(http.TimeFormat))
			c.Data(http.StatusOK, "text/css; charset=utf-8", brand)
			return
		}
		if _, err := fs.Stat(sub, c.Param("file")[1:]); err != nil || c.Param("file") == "/" {
			c.Header("Cache-Control", "no-store")
			c.String(http.StatusNotFound, "not found")
			return
		}
		fsrv.ServeHTTP(c.Writer, c.Request)
	})
}
