// Command floorproxy is the floor of the load benchmark: the least a proxy
// on Go's net/http server can do for a bodiless GET. It takes a pooled
// keep-alive connection to the one upstream, writes the request line and
// Host by hand, reads the answer with http.ReadResponse, copies its header
// and body, and puts the connection back. No routing, header policy,
// metrics, logging, timeouts or error recovery beyond closing a failed
// connection: it is not a proxy to run, only the cost of the server and
// one upstream exchange, which no proxy built on net/http can go below.
// load.sh sets ficus and nginx beside it.
package main

import (
	"bufio"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

type conn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

type pool struct {
	addr string
	mu   sync.Mutex
	idle []*conn
}

func (p *pool) get() (*conn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)}, nil
}

func (p *pool) put(c *conn) {
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

func (p *pool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := p.get()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	fail := func(err error) {
		c.c.Close()
		http.Error(w, err.Error(), http.StatusBadGateway)
	}
	c.bw.WriteString("GET " + r.URL.RequestURI() + " HTTP/1.1\r\nHost: " + r.Host + "\r\n\r\n")
	if err := c.bw.Flush(); err != nil {
		fail(err)
		return
	}
	resp, err := http.ReadResponse(c.br, r)
	if err != nil {
		fail(err)
		return
	}
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, err = io.Copy(w, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.c.Close()
		return
	}
	p.put(c)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:18083", "address to serve")
	upstream := flag.String("upstream", "127.0.0.1:18090", "upstream host:port (plain HTTP)")
	flag.Parse()
	srv := &http.Server{Addr: *listen, Handler: &pool{addr: *upstream}, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
