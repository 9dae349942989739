package demo

import (
	"fmt"
	"io"
)

// Hints are what the demo prints for people to try it: its addresses,
// files and credentials.
type Hints struct {
	// Prog is how the user runs ficus (bin/ficus, ficus).
	Prog string
	// Addr and OpsAddr are the bound front door and operational listener.
	Addr, OpsAddr string
	// Monolith, Orders and WebApp are the URLs of the stand-in upstreams.
	Monolith, Orders, WebApp string
	// RoutesFile is the demo's route file.
	RoutesFile string
	// Credentials are the seeded client and user.
	Credentials Credentials
	// WebhookSecret signs the Stripe web-hook adapter's events.
	WebhookSecret string
}

// Print writes the hints to w.
func (h Hints) Print(w io.Writer) {
	c := h.Credentials
	fmt.Fprintf(w, `
ficus demo is running (in-memory store: NOTHING IS KEPT when it stops; Ctrl-C to stop)

  front door     %[1]s
  operations     http://%[2]s   (/healthz /readyz /metrics)
  monolith       %[3]s   (go-httpbin, and a legacy web app under /legacy/)
  new service    %[4]s   (orders)
  new web app    %[11]s
  route file     %[5]s
                 edit it and save: ficus reloads it; an invalid edit is rejected, the old rules keep serving

Try:
  curl -s %[1]s/get                                   # the monolith, untouched
  curl -s %[1]s/api/orders/42                         # migrated: the new service, path /orders/42
  curl -s -c /tmp/ficus-jar -b /tmp/ficus-jar %[1]s/anything/cart
                                                      # split 50/50, sticky: repeat it, the side stays
  curl -s -H 'X-Migration-Target: orders' %[1]s/anything/cart   # a tester forces the new side
  curl -s -H 'X-Beta: 1' %[1]s/anything/reports       # beta testers only
  curl -s -o /dev/null -w '%%{http_code}\n' '%[1]s/api/orders/%%2e%%2e/admin%%2f'
                                                      # encoded slash: refused (400)
  curl -s http://%[2]s/metrics | grep '^ficus_requests_total'
  %[10]s routes validate %[5]s

The identity provider (demo client %[6]s, user %[8]s):
  client secret  %[7]s
  password       %[9]s
  curl -s -u %[6]s:%[7]s -d grant_type=client_credentials %[1]s/oauth2/token
  curl -s -u %[6]s:%[7]s -d grant_type=password -d username=%[8]s -d password=%[9]s %[1]s/oauth2/token
  curl -s -u %[6]s:%[7]s -d token=TOKEN %[1]s/oauth2/introspect
  curl -s %[1]s/.well-known/oauth-authorization-server
  curl -s %[1]s/.well-known/jwks.json

The exchange (opaque token in, JWT to the service):
  TOKEN=$(curl -s -u %[6]s:%[7]s -d grant_type=client_credentials %[1]s/oauth2/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  curl -s -H "Authorization: Bearer $TOKEN" %[1]s/api/me/orders   # the service prints the JWT claims it got
  curl -s -i %[1]s/api/me/orders                                   # no token: 401 with WWW-Authenticate

`, "http://"+h.Addr, h.OpsAddr, h.Monolith, h.Orders, h.RoutesFile, c.ClientID, c.ClientSecret, c.Username, c.Password, h.Prog, h.WebApp)
	fmt.Fprintf(w, `A Stripe web-hook adapter (signing secret %[2]s) delivers to the orders service:
  BODY='{"id":"evt_demo_1","type":"payment_intent.succeeded"}'; T=$(date +%%s)
  SIG=$(printf '%%s.%%s' "$T" "$BODY" | openssl dgst -sha256 -hmac '%[2]s' | sed 's/^.* //')
  curl -s -i -H "Stripe-Signature: t=$T,v1=$SIG" -H 'Content-Type: application/json' -d "$BODY" http://%[1]s/webhooks/stripe
  (post it twice: one delivery; change the body: 401; the orders service reports each delivery below)

`, h.Addr, h.WebhookSecret)
	fmt.Fprintf(w, `In a browser (user %[2]s, password %[3]s):
  %[1]s%[4]s   the legacy web app on the monolith: log in (cookie %[6]s)
  %[1]s%[5]s  my orders: moved to the orders service through the session bridge;
                 the page looks the same and says who served it; log out there, and it is gone
  %[1]s%[7]s          the new web app behind a ficus session: greets you by level (anonymous,
                 returning, logged_on), logs in with ficus, calls the orders service with its JPT

`, "http://"+h.Addr, c.Username, c.Password, LegacyLoginPath, LegacyOrdersPath, LegacySessionCookie, WebAppPath)
}
