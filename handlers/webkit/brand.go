package webkit

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Brand is how the pages present the business that controls the data
// (settings DSAR_BRAND_*). Every field has a working zero value.
type Brand struct {
	// Name is the controller's name, shown in every page's header;
	// "" reads "Privacy centre".
	Name string
	// LogoURL is an https URL (or a path on this service) of the logo
	// shown beside the name; "" shows none.
	LogoURL string
	// PolicyURL is the privacy policy the footer links to; "" links none.
	PolicyURL string
	// Color is the main colour as #rrggbb (buttons, links, header rule);
	// "" is a blue.
	Color string
}

// DefaultColor is the main colour when none is set.
const DefaultColor = "#1d4ed8"

var hexColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// Validate reports what is wrong with b, naming the setting.
func (b Brand) Validate() error {
	if b.Color != "" && !hexColor.MatchString(b.Color) {
		return fmt.Errorf("DSAR_BRAND_COLOR: %q is not a colour as #rrggbb", b.Color)
	}
	for _, u := range []struct{ env, v string }{{"DSAR_BRAND_LOGO_URL", b.LogoURL}, {"DSAR_BRAND_POLICY_URL", b.PolicyURL}} {
		if u.v == "" || strings.HasPrefix(u.v, "/") && !strings.HasPrefix(u.v, "//") {
			continue
		}
		p, err := url.Parse(u.v)
		if err != nil || p.Host == "" || (p.Scheme != "https" && !(p.Scheme == "http" && loopbackHost(p.Hostname()))) {
			return fmt.Errorf("%s: %q is not an https URL or a path", u.env, u.v)
		}
	}
	return nil
}

// logoOrigin is the origin the logo is loaded from, for the CSP: "" when
// there is no logo or it is on this service.
func (b Brand) logoOrigin() string {
	p, err := url.Parse(b.LogoURL)
	if b.LogoURL == "" || err != nil || p.Host == "" {
		return ""
	}
	return p.Scheme + "://" + p.Host
}

// CSS is the stylesheet of the brand's colours (/assets/brand.css): the
// main colour, the text colour that contrasts best with it on buttons, and
// a link colour that keeps WCAG AA contrast (4.5:1) on white, darkened from
// the main colour when that one is too light.
func (b Brand) CSS() string {
	c := b.Color
	if c == "" {
		c = DefaultColor
	}
	r, g, bl := parseHex(c)
	text := "#ffffff"
	if contrast(r, g, bl, 0, 0, 0) > contrast(r, g, bl, 255, 255, 255) {
		text = "#000000"
	}
	lr, lg, lb := r, g, bl
	for i := 0; i < 40 && contrast(lr, lg, lb, 255, 255, 255) < 4.5; i++ {
		lr, lg, lb = lr*9/10, lg*9/10, lb*9/10
	}
	return fmt.Sprintf(":root{--brand:%s;--brand-text:%s;--link:#%02x%02x%02x}\n", strings.ToLower(c), text, lr, lg, lb)
}

func parseHex(c string) (r, g, b int) {
	v, _ := strconv.ParseUint(strings.TrimPrefix(c, "#"), 16, 32)
	return int(v >> 16 & 0xff), int(v >> 8 & 0xff), int(v & 0xff)
}

// contrast is the WCAG contrast ratio of two sRGB colours.
func contrast(r1, g1, b1, r2, g2, b2 int) float64 {
	l1, l2 := luminance(r1, g1, b1), luminance(r2, g2, b2)
	if l1 < l2 {
		l1, l2 = l2, l1
	}
	return (l1 + 0.05) / (l2 + 0.05)
}

func luminance(r, g, b int) float64 {
	ch := func(v int) float64 {
		c := float64(v) / 255
		if c <= 0.04045 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(r) + 0.7152*ch(g) + 0.0722*ch(b)
}
