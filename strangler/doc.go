// Package strangler is ficus's proxy: the live route table (immutable,
// swapped atomically), the upstream pools, splits with sticky cohorts and
// tester overrides, circuit breakers with fallback to the monolith, path and
// response rewrites, header hygiene, metrics and the access log.
//
// A Gateway is an http.Handler. Load gives it a validated rule file; every
// request sees exactly one rule set, old or new, never half of one:
//
//	gw, _ := strangler.New(strangler.Options{})
//	f, _ := routes.ParseFile("routes.yaml")
//	_ = gw.Load(f)
//	http.ListenAndServe(":8080", gw)
package strangler
