package netguard_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/dsar-project/dsar/internal/netguard"
)

func TestInternal(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1", true}, {"127.1.2.3", true}, {"::1", true},
		{"10.0.0.1", true}, {"172.16.5.4", true}, {"172.31.255.255", true}, {"192.168.1.1", true},
		{"fd12:3456::1", true}, {"fc00::1", true},
		{"169.254.169.254", true}, {"fe80::1", true},
		{"100.64.0.1", true}, {"100.127.255.254", true},
		{"0.0.0.0", true}, {"::", true}, {"0.1.2.3", true},
		{"::ffff:127.0.0.1", true}, {"::ffff:169.254.169.254", true}, {"64:ff9b::a9fe:a9fe", true},
		{"224.0.0.1", true}, {"255.255.255.255", true},
		{"8.8.8.8", false}, {"93.184.216.34", false}, {"172.32.0.1", false}, {"100.128.0.1", false},
		{"2606:4700::1111", false}, {"::ffff:8.8.8.8", false},
	} {
		if got := netguard.Internal(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Internal(%s) = %v; want %v", tt.addr, got, tt.want)
		}
	}
}

// hits is a server that counts the calls it gets.
func hits(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func addrOf(t *testing.T, srv *httptest.Server) netip.AddrPort {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return netip.MustParseAddrPort(u.Host)
}

// TestClientRefusesInternal: a loopback server is refused whether the URL
// names its address or a name that resolves to it, and reached once the
// options allow internal addresses.
func TestClientRefusesInternal(t *testing.T) {
	t.Parallel()
	srv, n := hits(t, nil)
	port := addrOf(t, srv).Port()
	for _, u := range []string{srv.URL, "http://localhost:" + itoa(port)} {
		_, err := netguard.Client(netguard.Options{}).Get(u)
		if !errors.Is(err, netguard.ErrRefused) {
			t.Errorf("GET %s: %v; want ErrRefused", u, err)
		}
	}
	if n.Load() != 0 {
		t.Fatalf("the refused server was reached %d times", n.Load())
	}
	resp, err := netguard.Client(netguard.Options{AllowInternal: true}).Get(srv.URL)
	if err != nil {
		t.Fatalf("with AllowInternal: %v", err)
	}
	_ = resp.Body.Close()
	if n.Load() != 1 {
		t.Errorf("with AllowInternal the server was reached %d times; want 1", n.Load())
	}
}

// TestClientFollowsNoRedirect: a public server (a loopback one exempted,
// standing in) that redirects to a loopback address gets its 302 back;
// the address it names is never reached.
func TestClientFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	inside, reached := hits(t, nil)
	public, _ := hits(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, inside.URL+"/latest/meta-data", http.StatusFound)
	})
	c := netguard.Client(netguard.Exempt(netguard.Options{}, addrOf(t, public)))
	resp, err := c.Get(public.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound || reached.Load() != 0 {
		t.Errorf("status %d, the redirect's target reached %d times; want the 302 back, target never reached", resp.StatusCode, reached.Load())
	}
	// Even a client that followed it would be refused at the dial.
	follow := netguard.Client(netguard.Exempt(netguard.Options{}, addrOf(t, public)))
	follow.CheckRedirect = nil
	if _, err := follow.Get(public.URL); !errors.Is(err, netguard.ErrRefused) || reached.Load() != 0 {
		t.Errorf("following the redirect: %v (target reached %d times); want ErrRefused", err, reached.Load())
	}
}

func itoa(p uint16) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[len("0.0.0.0:"):]
}
