package webkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"
	"golang.org/x/text/language"
)

// Languages are the languages the pages are translated into, the first the
// fallback: a message missing from a catalogue is taken from English (a
// test keeps every catalogue complete).
var Languages = []Language{
	{Code: "en", Name: "English"},
	{Code: "fr", Name: "Français"},
}

// Language is one language of the pages: its BCP 47 code and its own name.
type Language struct{ Code, Name string }

// LangCookie keeps the language a person chose with the switch.
const LangCookie = "dsar_lang"

// catalog holds the messages of every language: code -> key -> text.
type catalog map[string]map[string]string

var matcher = func() language.Matcher {
	tags := make([]language.Tag, len(Languages))
	for i, l := range Languages {
		tags[i] = language.Make(l.Code)
	}
	return language.NewMatcher(tags)
}()

// loadMessages adds the catalogues under dir of fsys (dir/<code>.json, a
// flat object of key -> text) to cat. A key defined twice is an error: one
// key, one message.
func loadMessages(cat catalog, fsys fs.FS, dir string) error {
	if _, err := fs.Stat(fsys, dir); errors.Is(err, fs.ErrNotExist) {
		return nil // a surface with no messages of its own
	}
	for _, l := range Languages {
		b, err := fs.ReadFile(fsys, path.Join(dir, l.Code+".json"))
		if err != nil {
			return fmt.Errorf("messages %s: %w", l.Code, err)
		}
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("messages %s: %w", l.Code, err)
		}
		if cat[l.Code] == nil {
			cat[l.Code] = map[string]string{}
		}
		for k, v := range m {
			if _, dup := cat[l.Code][k]; dup {
				return fmt.Errorf("messages %s: key %q defined twice", l.Code, k)
			}
			cat[l.Code][k] = v
		}
	}
	return nil
}

// text returns the message key in lang, with args in its %s/%d verbs; the
// English one when lang lacks it; the key itself, bracketed, when English
// lacks it too (which a test forbids).
func (cat catalog) text(lang, key string, args ...any) string {
	msg, ok := cat[lang][key]
	if !ok {
		msg, ok = cat[Languages[0].Code][key]
	}
	if !ok {
		return "[" + key + "]"
	}
	if len(args) > 0 {
		return fmt.Sprintf(msg, args...)
	}
	return msg
}

// missing lists, per language, the keys English has and it lacks, and the
// keys it has that English lacks.
func (cat catalog) missing() []string {
	var out []string
	en := cat[Languages[0].Code]
	for _, l := range Languages[1:] {
		for k := range en {
			if _, ok := cat[l.Code][k]; !ok {
				out = append(out, l.Code+": missing "+k)
			}
		}
		for k := range cat[l.Code] {
			if _, ok := en[k]; !ok {
				out = append(out, l.Code+": not in en: "+k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Lang returns the language of the exchange: a ?lang= switch (which is
// kept in a cookie), else the cookie, else the best match of
// Accept-Language, else English.
func Lang(c *gin.Context) string {
	if q := c.Query("lang"); known(q) {
		http.SetCookie(c.Writer, &http.Cookie{Name: LangCookie, Value: q, Path: "/", MaxAge: 365 * 24 * 3600,
			HttpOnly: true, Secure: SecureCookies(c.Request), SameSite: http.SameSiteLaxMode})
		return q
	}
	if ck, err := c.Cookie(LangCookie); err == nil && known(ck) {
		return ck
	}
	tags, _, _ := language.ParseAcceptLanguage(c.GetHeader("Accept-Language"))
	_, i, conf := matcher.Match(tags...)
	if conf == language.No {
		return Languages[0].Code
	}
	return Languages[i].Code
}

func known(code string) bool {
	for _, l := range Languages {
		if l.Code == code {
			return true
		}
	}
	return false
}

// langLinks are the switch's links: the current path with ?lang=code.
func langLinks(c *gin.Context, current string) []LangLink {
	out := make([]LangLink, len(Languages))
	for i, l := range Languages {
		q := c.Request.URL.Query()
		q.Set("lang", l.Code)
		u := c.Request.URL.Path + "?" + q.Encode()
		if c.Request.Method != http.MethodGet {
			u = strings.TrimSuffix(c.Request.URL.Path, "/") + "?lang=" + l.Code
		}
		out[i] = LangLink{Language: l, URL: u, Current: l.Code == current}
	}
	return out
}

// LangLink is one entry of the language switch.
type LangLink struct {
	Language
	URL     string
	Current bool
}
