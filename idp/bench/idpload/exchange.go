package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// exchangeOpts drive the gateway ops: requests through ficus's front door
// to an upstream that idpload itself serves at upstream.
type exchangeOpts struct {
	base, path, upstream string
	id, secret           string
	workers, tokens      int
	dur                  time.Duration
	// hit: each worker sends one token again and again (the cached
	// exchange), instead of each token once.
	hit bool
}

// serveUpstream answers every request 200; with wantJWT, a request that
// does not carry a JWT (three dot-separated parts after "Bearer ") in
// Authorization is answered 502, so that a missing exchange counts as a
// failure.
//
// The previous idpload of a script may still be exiting, its upstream still
// bound (load.sh reads each result line before the process has gone): a
// busy address is tried again for up to 5 s.
func serveUpstream(addr string, wantJWT bool) {
	ln, err := net.Listen("tcp", addr)
	for i := 0; errors.Is(err, syscall.EADDRINUSE) && i < 50; i++ {
		time.Sleep(100 * time.Millisecond)
		ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wantJWT {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || strings.Count(tok, ".") != 2 || strings.HasPrefix(tok, "ficus_") {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
		}
		io.WriteString(w, "ok\n")
	}))
}

// runExchange measures the gateway's opaque-token exchange on a cache
// miss: it first issues o.tokens access tokens with the client-credentials
// grant (not timed), then sends each token exactly once, through the
// oauth2 route at o.path, so that every request carries a token this ficus
// instance has never looked up. It stops at o.dur or when the tokens run
// out, and prints
//
//	exchange <distinct tokens/s> <p50 ms> <p99 ms> <failures>
//
// With o.tokens 0 (op passthrough) every request is a plain GET of o.path
// without a token: the proxy's own cost on the same upstream.
func runExchange(client *http.Client, op string, o exchangeOpts) {
	serveUpstream(o.upstream, o.tokens > 0)
	toks := make([]string, o.tokens)
	if o.tokens > 0 {
		var next atomic.Int64
		var wg sync.WaitGroup
		t0 := time.Now()
		for range o.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1) - 1; i < int64(len(toks)); i = next.Add(1) - 1 {
					toks[i] = issue(client, o)
				}
			}()
		}
		wg.Wait()
		fmt.Fprintf(os.Stderr, "%s: issued %d tokens in %s\n", op, len(toks), time.Since(t0).Round(time.Millisecond))
		// Let the burst's tail settle (the audit trail's last batches,
		// autovacuum's analyze of the new rows) before the clock starts.
		time.Sleep(2 * time.Second)
	}
	var next atomic.Int64
	t := newTally(o.workers)
	deadline := time.Now().Add(o.dur)
	var wg sync.WaitGroup
	start := time.Now()
	var end atomic.Int64 // when the tokens ran out (unix ns), 0 if they did not
	for w := range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest("GET", o.base+o.path, nil)
				if o.hit {
					req.Header.Set("Authorization", "Bearer "+toks[w%len(toks)])
				} else if o.tokens > 0 {
					i := next.Add(1) - 1
					if i >= int64(len(toks)) {
						end.CompareAndSwap(0, time.Now().UnixNano())
						return
					}
					req.Header.Set("Authorization", "Bearer "+toks[i])
				}
				t0 := time.Now()
				t.note(w, t0, get(client, req))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if e := end.Load(); e != 0 {
		elapsed = time.Unix(0, e).Sub(start)
		fmt.Fprintf(os.Stderr, "%s: all %d tokens used after %s (raise -tokens for a longer run)\n", op, len(toks), elapsed.Round(time.Millisecond))
	}
	fmt.Fprintln(os.Stdout, t.line(op, elapsed))
}

// issue returns a new access token of the client, from the
// client-credentials grant.
func issue(client *http.Client, o exchangeOpts) string {
	req, _ := http.NewRequest("POST", o.base+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(o.id, o.secret)
	resp, err := client.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 || m.AccessToken == "" {
		log.Fatalf("issuing a token: %d %v", resp.StatusCode, err)
	}
	return m.AccessToken
}

func get(client *http.Client, req *http.Request) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	return nil
}
