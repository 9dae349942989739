package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Issue 8 items 10 and 11 through serve: the IDP's per-address failure
// limit sees the client's address through trusted_proxies, and the
// hashing budget settings load.
func TestServeIDPFailureLimitThroughTrustedProxies(t *testing.T) {
	t.Parallel()
	front, _, _ := testServer(t, fmt.Sprintf(`listen: {addr: "127.0.0.1:0", ops_addr: "127.0.0.1:0"}
routes: {file: %s}
trusted_proxies: [127.0.0.1]
idp: {issuer: "http://ficus.test", auth_failures_per_minute: 3, hash_memory: 128MiB, hash_wait: 1s}
`, routeFile(t, "http://127.0.0.1:1")))
	try := func(from string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", front+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "client_id": {"nobody"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", from)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var got []int
	for range 4 {
		got = append(got, try("198.51.100.1"))
	}
	got = append(got, try("198.51.100.2"))
	if fmt.Sprint(got) != "[401 401 401 429 401]" {
		t.Fatalf("statuses %v, want 3 failures then 429 for one address, and another address unaffected", got)
	}
}
