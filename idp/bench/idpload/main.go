// Command idpload drives a running ficus IDP over HTTP and reports the
// sustained rate and latency of one operation:
//
//	client_credentials  issue tokens
//	introspect          RFC 7662 introspection of a live token
//	refresh             refresh-token rotation (each worker follows its own chain)
//	webhook             post 1 KiB Stripe-signed events (-secret is the signing secret) to -path
//	pg_insert           baseline: one INSERT of a token-sized row per operation, straight to PostgreSQL
//	pg_insert_hook      baseline: one INSERT ... ON CONFLICT DO NOTHING RETURNING of a 1 KiB event into a
//	                    table shaped like the web-hook inbox (same columns, keys and index), as ingest does
//	sink                serve -listen, answering 200 to every request (the deliverer's target), until killed
//	null                serve -listen until killed: a no-op endpoint, the floor a real endpoint is judged
//	                    against. Every request's body is parsed as a form (r.ParseForm, as the token and
//	                    introspection endpoints do), the rest read and discarded, and answered 200
//	                    application/json with one fixed body (nullBody) that every client op above accepts:
//	                    access_token for introspect's set-up, active for introspect, refresh_token for
//	                    refresh; client_credentials and webhook only want the 200. Point the client ops
//	                    at it with -url to measure what an HTTP server doing nothing reaches with this
//	                    generator on this machine (load.sh's null_* rows). With -dsn, it also commits
//	                    one INSERT per request before it answers (its own statement and commit): the
//	                    posted JSON body as an inbox-shaped row as pg_insert_hook does, or for a form a
//	                    token-sized row as pg_insert does. The floor of an endpoint that commits each
//	                    write (load.sh's commit_* rows).
//	pg_select           baseline: one SELECT by primary key per operation, straight to PostgreSQL
//	exchange            GET /svc/x through the gateway's oauth2 route, each request with an access token
//	                    ficus has not seen yet (-tokens of them, issued first): the cache-miss exchange;
//	                    idpload serves the upstream at -upstream
//	exchange_hit        as exchange, each worker sending one token again and again (the cached exchange)
//	passthrough         GET /pass/x without a token through a route to the same upstream
//	flood               -bogus workers send token requests with random client ids and secrets
//	                    (from random X-Forwarded-For addresses with -xff) while -c workers of the
//	                    real client ask for tokens; reports both, and ficus's peak memory (-pid)
//
// It runs on loopback against the address given, for a bounded time.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ficus-gw/ficus/idp"
	"github.com/jackc/pgx/v5/pgxpool"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:18080", "ficus front door")
	op := flag.String("op", "client_credentials", "client_credentials | introspect | refresh | webhook | null | … (see the package comment)")
	id := flag.String("client", "", "client id")
	secret := flag.String("secret", "", "client secret")
	user := flag.String("user", "", "username (refresh)")
	pw := flag.String("password", "", "password (refresh)")
	workers := flag.Int("c", 32, "concurrent workers")
	dur := flag.Duration("d", 5*time.Second, "duration")
	dsn := flag.String("dsn", "", "PostgreSQL URL (pg_* baselines)")
	hookPath := flag.String("path", "/webhooks/stripe", "web-hook path (webhook)")
	bogus := flag.Int("bogus", 200, "concurrent bogus workers (flood)")
	xff := flag.Bool("xff", false, "bogus requests come from random X-Forwarded-For addresses (flood)")
	pid := flag.Int("pid", 0, "ficus process whose memory to sample (flood)")
	coldID := flag.String("cold-client", "", "a second real client, not yet verified, that asks for one token during the flood")
	coldSecret := flag.String("cold-secret", "", "its secret")
	upstream := flag.String("upstream", "127.0.0.1:18190", "address idpload serves the upstream on (exchange, passthrough)")
	tokens := flag.Int("tokens", 60000, "distinct tokens to issue before the clock starts (exchange)")
	poolMax := flag.Int("pool", 32, "at most this many PostgreSQL connections (pg_* baselines)")
	listen := flag.String("listen", "127.0.0.1:18090", "address the sink or the no-op endpoint serves (sink, null)")
	flag.Parse()
	switch *op {
	case "sink":
		runSink(*listen)
		return
	case "null":
		runNull(*listen, *dsn, *poolMax)
		return
	}
	var pool *pgxpool.Pool
	if strings.HasPrefix(*op, "pg_") || (*op == "webhook" && *dsn != "") {
		// A connection per worker up to -pool (ficus's store.max_conns in
		// load.sh): each INSERT is its own statement and its own commit.
		cfg, err := pgxpool.ParseConfig(*dsn)
		if err != nil {
			log.Fatal(err)
		}
		cfg.MaxConns = int32(max(min(*workers, *poolMax), 1))
		if *op == "webhook" {
			cfg.MaxConns = 2 // the delivery counters only
		}
		if pool, err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
			log.Fatal(err)
		}
		ctx := context.Background()
		if _, err := pool.Exec(ctx, baselineDDL); err != nil {
			log.Fatal(err)
		}
		pool.Exec(ctx, `INSERT INTO bench_baseline VALUES ('probe', 'c', 'a', now()) ON CONFLICT DO NOTHING`)
		if *op == "pg_insert_hook" {
			if _, err := pool.Exec(ctx, benchInboxDDL); err != nil {
				log.Fatal(err)
			}
		}
	}
	if !strings.HasPrefix(*base, "http://127.") && !strings.HasPrefix(*base, "http://localhost") {
		log.Fatal("idpload only targets loopback")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *workers*2 + *bogus}, Timeout: 10 * time.Second}
	post := func(path string, form url.Values) (map[string]any, error) {
		req, _ := http.NewRequest("POST", *base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(*id, *secret)
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("%d %s", resp.StatusCode, b)
		}
		var m map[string]any
		return m, json.Unmarshal(b, &m)
	}

	if *op == "flood" {
		runFlood(client, *base, floodOpts{id: *id, secret: *secret, coldID: *coldID, coldSecret: *coldSecret,
			legit: *workers, bogus: *bogus, xff: *xff, pid: *pid, dur: *dur})
		return
	}

	if *op == "exchange" || *op == "exchange_hit" || *op == "passthrough" {
		o := exchangeOpts{base: *base, path: "/svc/x", upstream: *upstream, id: *id, secret: *secret, workers: *workers, tokens: *tokens, dur: *dur}
		switch *op {
		case "passthrough":
			o.path, o.tokens = "/pass/x", 0
		case "exchange_hit":
			o.tokens, o.hit = *workers, true
		}
		runExchange(client, *op, o)
		return
	}

	// Per-worker state prepared before the clock starts.
	state := make([]string, *workers)
	for i := range state {
		switch *op {
		case "introspect":
			m, err := post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}})
			if err != nil {
				log.Fatal(err)
			}
			state[i] = m["access_token"].(string)
		case "refresh":
			m, err := post("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {*user}, "password": {*pw}, "remember": {"true"}})
			if err != nil {
				log.Fatal(err)
			}
			state[i] = m["refresh_token"].(string)
		}
	}

	var delivered0 int64
	if *op == "webhook" && pool != nil {
		delivered0 = countDelivered(pool)
	}
	t := newTally(*workers)
	deadline := time.Now().Add(*dur)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				t0 := time.Now()
				var err error
				switch *op {
				case "pg_insert":
					_, err = pool.Exec(context.Background(), `INSERT INTO bench_baseline VALUES ($1, 'c', 'a', now())`, fmt.Sprintf("%d-%d-%d", w, t0.UnixNano(), t.ops.Load()))
				case "pg_insert_hook":
					var id int64
					var at time.Time
					body := hookBody(fmt.Sprintf("evt_%d_%d_%d", w, t0.UnixNano(), t.ops.Load()))
					err = pool.QueryRow(context.Background(), `INSERT INTO bench_inbox (adapter, event_id, headers, body)
						VALUES ('stripe', $1, $2::jsonb, $3) ON CONFLICT (adapter, event_id) DO NOTHING RETURNING id, received_at`,
						fmt.Sprintf("evt_%d_%d_%d", w, t0.UnixNano(), t.ops.Load()), hookHeaders, []byte(body)).Scan(&id, &at)
				case "pg_select":
					var s string
					err = pool.QueryRow(context.Background(), `SELECT scope FROM bench_baseline WHERE hash = 'probe'`).Scan(&s)
				case "webhook":
					err = postHook(client, *base+*hookPath, *secret, fmt.Sprintf("evt_%d_%d_%d", w, t0.UnixNano(), t.ops.Load()))
				case "client_credentials":
					_, err = post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}})
				case "introspect":
					var m map[string]any
					m, err = post("/oauth2/introspect", url.Values{"token": {state[w]}})
					if err == nil && m["active"] != true {
						err = fmt.Errorf("inactive")
					}
				case "refresh":
					var m map[string]any
					m, err = post("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {state[w]}})
					if err == nil {
						state[w] = m["refresh_token"].(string)
					}
				}
				t.note(w, t0, err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprint(os.Stdout, t.line(*op, elapsed))
	if *op == "webhook" && pool != nil {
		// Delivery: the events delivered while the load ran, per second,
		// then how long the rest took to go out (the inbox has no pending
		// event left), and the rate over both.
		during := countDelivered(pool) - delivered0
		t1 := time.Now()
		for pending(pool) > 0 && time.Since(t1) < 2*time.Minute {
			time.Sleep(50 * time.Millisecond)
		}
		drain := time.Since(t1)
		total := countDelivered(pool) - delivered0
		fmt.Fprintf(os.Stdout, " %.0f %.0f %.1f", float64(during)/elapsed.Seconds(), float64(total)/(elapsed+drain).Seconds(), drain.Seconds())
	}
	fmt.Fprintln(os.Stdout)
}

// baselineDDL is the table of the token INSERT baselines.
const baselineDDL = `CREATE TABLE IF NOT EXISTS bench_baseline (hash text PRIMARY KEY, client_id text, scope text, expires_at timestamptz)`

// benchInboxDDL is the web-hook inbox's shape (adapters/inbox/migrations)
// for the pg_insert_hook baseline.
const benchInboxDDL = `CREATE TABLE IF NOT EXISTS bench_inbox (
    id bigserial PRIMARY KEY, adapter text NOT NULL, event_id text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(), headers jsonb NOT NULL DEFAULT '{}', body bytea NOT NULL,
    status text NOT NULL DEFAULT 'pending', attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(), last_error text, delivered_at timestamptz,
    order_key text, traceparent text, claim_token bigint, UNIQUE (adapter, event_id));
CREATE INDEX IF NOT EXISTS bench_inbox_due ON bench_inbox (next_attempt_at) WHERE status = 'pending'`

// hookHeaders is about what ingest stores of a sender's headers.
const hookHeaders = `{"Content-Type":["application/json"],"Stripe-Signature":["t=1700000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"],"User-Agent":["Go-http-client/1.1"]}`

func countDelivered(pool *pgxpool.Pool) int64 {
	var n int64
	pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_inbox WHERE status = 'delivered'`).Scan(&n)
	return n
}

func pending(pool *pgxpool.Pool) int64 {
	var n int64
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_inbox WHERE status = 'pending'`).Scan(&n); err != nil {
		return 0
	}
	return n
}

// runSink answers 200 to every request on addr: a fast delivery target.
func runSink(addr string) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	})
	log.Fatal((&http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}).ListenAndServe())
}

// nullBody is the no-op endpoint's answer: an introspection response and a
// token response in one, so that every client op accepts it. The access
// token has the length of a real one (prefix and 43 characters).
var nullBody = []byte(`{"active":true,"access_token":"` + idp.AccessTokenPrefix + strings.Repeat("A", 43) +
	`","token_type":"Bearer","expires_in":3600,"scope":"a","client_id":"bench","refresh_token":"r"}`)

// runNull serves the no-op endpoint on addr until killed: it does what
// any endpoint must (parse the form, read the body) and nothing else; with
// a dsn, it also commits one INSERT of a token-sized row per request, on at
// most poolMax connections, before it answers.
func runNull(addr, dsn string, poolMax int) {
	var pool *pgxpool.Pool
	if dsn != "" {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			log.Fatal(err)
		}
		cfg.MaxConns = int32(max(poolMax, 1))
		if pool, err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
			log.Fatal(err)
		}
		for _, ddl := range []string{baselineDDL, benchInboxDDL} {
			if _, err := pool.Exec(context.Background(), ddl); err != nil {
				log.Fatal(err)
			}
		}
	}
	var n atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if pool != nil {
			id := fmt.Sprintf("null-%d-%d", time.Now().UnixNano(), n.Add(1))
			var err error
			if r.Header.Get("Content-Type") == "application/json" {
				var at time.Time
				var row int64
				err = pool.QueryRow(r.Context(), `INSERT INTO bench_inbox (adapter, event_id, headers, body)
					VALUES ('stripe', $1, $2::jsonb, $3) ON CONFLICT (adapter, event_id) DO NOTHING RETURNING id, received_at`,
					id, hookHeaders, body).Scan(&row, &at)
			} else {
				_, err = pool.Exec(r.Context(), `INSERT INTO bench_baseline VALUES ($1, 'c', 'a', now())`, id)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(nullBody)))
		w.Write(nullBody)
	})
	log.Fatal((&http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}).ListenAndServe())
}

var pad = strings.Repeat("x", 900)

// hookBody is a Stripe event of about 1 KiB.
func hookBody(id string) string {
	return fmt.Sprintf(`{"id":%q,"type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","amount":1200,"pad":%q}}}`, id, pad)
}

// postHook sends one Stripe-signed event of about 1 KiB.
func postHook(client *http.Client, u, secret, id string) error {
	body := hookBody(id)
	ts := fmt.Sprint(time.Now().Unix())
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + body))
	req, _ := http.NewRequest("POST", u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", "t="+ts+",v1="+hex.EncodeToString(m.Sum(nil)))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%d", resp.StatusCode)
	}
	return nil
}
