package handlers

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// OpenAPI is the OpenAPI 3.1 document of the HTTP API, served at
// /openapi.yaml. Tests validate every request and response they make
// against it, so it describes what the code does.
//
//go:embed openapi.yaml
var OpenAPI []byte

func openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/yaml", OpenAPI)
}
