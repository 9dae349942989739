package demo

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/ficus-gw/ficus/routes"
)

// Upstreams are the demo's stand-in monolith and new service, running,
// and the route file that sends traffic to them.
type Upstreams struct {
	// Monolith, Orders and WebApp are the URLs they serve on.
	Monolith, Orders, WebApp string
	// RoutesFile is dir/routes.yaml.
	RoutesFile string

	servers []*http.Server
}

// OrdersAudience is the audience of the JWTs the demo's orders service
// accepts, as the demo route file names it.
const OrdersAudience = "orders-svc"

// Setup is what the demo's upstreams start with.
type Setup struct {
	// Dir holds the route file.
	Dir string
	// Password is DemoUser's on the monolith's legacy web application.
	Password string
	// JWKSURL and Issuer are ficus's IDP, whose JWTs the orders service
	// verifies (audience OrdersAudience).
	JWKSURL, Issuer string
	// Front is ficus's front door, through which the web app calls the
	// orders service.
	Front string
}

// StartUpstreams starts the monolith, the orders service and the web app
// on loopback
// and writes the demo route file, dir/routes.yaml, for them. An existing
// route file (an edit from an earlier run) is kept, and the upstreams
// listen where it says, if they can; this is said on out, where the
// orders service also reports web-hook deliveries.
func StartUpstreams(s Setup, out io.Writer) (*Upstreams, error) {
	u := &Upstreams{RoutesFile: filepath.Join(s.Dir, "routes.yaml")}
	monoAddr, ordersAddr, webAddr := "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	_, err := os.Stat(u.RoutesFile)
	kept := err == nil
	if kept {
		if f, err := routes.ParseFile(u.RoutesFile); err == nil {
			monoAddr, ordersAddr, webAddr = LoopbackAddr(f, "legacy"), LoopbackAddr(f, "orders"), LoopbackAddr(f, "webapp")
		}
		fmt.Fprintf(out, "ficus demo: keeping the existing route file %s (delete it to start from the demo's)\n", u.RoutesFile)
	}
	monoURL, mono, err := Listen(monoAddr, Monolith(s.Password))
	if err != nil {
		return nil, fmt.Errorf("the demo monolith on %s (named in %s): %w", monoAddr, u.RoutesFile, err)
	}
	u.Monolith, u.servers = monoURL, append(u.servers, mono)
	ordersURL, orders, err := Listen(ordersAddr, Service("orders", Trust{JWKSURL: s.JWKSURL, Issuer: s.Issuer, Audience: OrdersAudience}, out))
	if err != nil {
		u.Close()
		return nil, fmt.Errorf("the demo orders service on %s (named in %s): %w", ordersAddr, u.RoutesFile, err)
	}
	u.Orders, u.servers = ordersURL, append(u.servers, orders)
	webURL, web, err := Listen(webAddr, WebApp(s.Front))
	if err != nil {
		u.Close()
		return nil, fmt.Errorf("the demo web app on %s (named in %s): %w", webAddr, u.RoutesFile, err)
	}
	u.WebApp, u.servers = webURL, append(u.servers, web)
	if !kept {
		rules, err := Routes(u)
		if err == nil {
			err = os.WriteFile(u.RoutesFile, rules, 0o644)
		}
		if err != nil {
			u.Close()
			return nil, err
		}
	}
	return u, nil
}

// Close stops the upstreams.
func (u *Upstreams) Close() error {
	var errs []error
	for _, s := range u.servers {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
