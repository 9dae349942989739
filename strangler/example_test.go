package strangler_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/ficus-gw/ficus/routes"
	"github.com/ficus-gw/ficus/strangler"
)

// A gateway in front of a monolith and one new service: /api/orders has
// moved, everything else stays on the monolith.
func ExampleGateway() {
	monolith := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "monolith %s", r.URL.Path)
	}))
	defer monolith.Close()
	orders := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "orders service %s", r.URL.Path)
	}))
	defer orders.Close()

	rules, err := routes.Parse("routes.yaml", []byte(strings.NewReplacer("MONO", monolith.URL, "ORDERS", orders.URL).Replace(`
version: 1
monolith: legacy
upstreams:
  legacy: {url: "MONO"}
  orders: {url: "ORDERS"}
routes:
  - name: orders
    match: {prefix: /api/orders}
    to: orders
    rewrite: {strip_prefix: /api}
`)))
	if err != nil {
		panic(err)
	}
	gw, _ := strangler.New(strangler.Options{})
	if err := gw.Load(rules); err != nil {
		panic(err)
	}
	front := httptest.NewServer(gw)
	defer front.Close()

	for _, p := range []string{"/api/orders/42", "/account"} {
		resp, _ := http.Get(front.URL + p)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s -> %s\n", p, body)
	}
	// Output:
	// /api/orders/42 -> orders service /orders/42
	// /account -> monolith /account
}
