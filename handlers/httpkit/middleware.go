package httpkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// SecurityHeaders marks every response nosniff (a browser takes its
// Content-Type as given, never guesses HTML in a JSON body or a zip), and
// every response under /v1 no-store: they carry personal data, status
// tokens or exports, which no browser or proxy cache may keep. Problems
// and 401s included, so no route can forget it.
func SecurityHeaders() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("X-Content-Type-Options", "nosniff")
		if strings.HasPrefix(c.Request.URL.Path, "/v1/") {
			c.Header("Cache-Control", "no-store")
		}
		c.Next()
	}
}

const requestIDKey = "dsar.request_id"

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// RequestID takes a well-formed X-Request-Id from the caller or makes one,
// and echoes it on the response.
func RequestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		c.Set(requestIDKey, id)
		c.Header("X-Request-Id", id)
		c.Next()
	}
}

// RequestIDOf returns the X-Request-Id RequestID gave the exchange.
func RequestIDOf(c *gin.Context) string {
	return c.GetString(requestIDKey)
}

// AccessLog logs one line per HTTP exchange: route template, status,
// duration and ids. Never the query string, body or client address, which
// can identify a person.
func AccessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "(no route)"
		}
		log.InfoContext(c.Request.Context(), "http",
			"method", c.Request.Method, "route", route, "status", c.Writer.Status(),
			"duration_ms", time.Since(start).Milliseconds(), "http_request_id", RequestIDOf(c),
			"caller", PrincipalOf(c).Name)
	}
}

// Recovery turns a panic into a 500 problem and a log line. A handler that
// panics with http.ErrAbortHandler (a stream cut short) is passed on, so the
// server drops the connection and the client sees a broken response rather
// than a complete-looking one.
func Recovery(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			rec := recover()
			if rec == nil {
				return
			}
			if err, ok := rec.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(rec)
			}
			log.ErrorContext(c.Request.Context(), "panic in handler", "route", c.FullPath(), "http_request_id", RequestIDOf(c), "panic", fmt.Sprint(rec))
			if !c.Writer.Written() {
				Abort(c, Problem{Status: http.StatusInternalServerError, Detail: "The server failed; the error is logged under this request_id."})
			}
			c.Abort()
		}()
		c.Next()
	}
}

// StorageWatch remembers that a write failed because the store's disk is
// full, until a probe write succeeds: readiness fails meanwhile. Reads still
// work on a full disk, so a ping alone would not see it. The zero value is
// ready to use.
type StorageWatch struct {
	mu   sync.Mutex
	full bool
}

// Watch marks the store full when an exchange failed for that reason
// (Error and MarkStorageFull mark it).
func (w *StorageWatch) Watch() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		if c.GetBool(storageFullKey) {
			w.mu.Lock()
			w.full = true
			w.mu.Unlock()
		}
	}
}

// Check reports whether the store can write: true unless a write failed
// for lack of space and probe (when not nil) still fails. A probe that
// succeeds clears the mark.
func (w *StorageWatch) Check(ctx context.Context, probe func(context.Context) error) bool {
	w.mu.Lock()
	full := w.full
	w.mu.Unlock()
	if !full || probe == nil {
		return !full
	}
	if err := probe(ctx); err != nil {
		return false
	}
	w.mu.Lock()
	w.full = false
	w.mu.Unlock()
	return true
}
