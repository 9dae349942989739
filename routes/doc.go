// Package routes owns ficus's rule model: the types of a route file, parsing
// it from YAML with positions, validating it as a whole (field rules through
// go-playground/validator, those of routes by hand for speed, plus semantic
// checks), compiling it into a matcher
// whose cost does not grow with the number of routes, normalising request
// paths the one way both matching and forwarding use, and diffing two rule
// sets.
//
// A rule file names its upstreams and its routes:
//
//	version: 1
//	monolith: legacy
//	upstreams:
//	  legacy: {url: "http://127.0.0.1:8081"}
//	  orders: {url: "http://127.0.0.1:9001"}
//	routes:
//	  - name: orders
//	    match: {prefix: /api/orders}
//	    split:
//	      - {to: orders, weight: 20}
//	      - {to: legacy, weight: 80}
//	    sticky: {cookie: ficus_cohort}
//
// See docs/routes.md for the full reference.
package routes
