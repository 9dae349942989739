// Command minproxy is the baseline of the load benchmark: a minimal
// net/http/httputil.ReverseProxy with a deliberately sized idle pool (Go's
// default of 2 idle connections per host halves throughput).
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18082", "address to serve")
	upstream := flag.String("upstream", "http://127.0.0.1:18090", "upstream URL")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil {
		log.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
		Transport: &http.Transport{
			MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second,
		},
	}
	log.Fatal(http.ListenAndServe(*listen, proxy))
}
