// Package tokens obtains the adapters' own OAuth2 client-credentials
// tokens. Unlike golang.org/x/oauth2's token sources, whose Token has no
// context (and whose HTTP client, unless put in a context, has no
// timeout), a ClientCredentials returns when its caller's context ends,
// and every token request has a deadline.
package tokens

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"
)

// ClientCredentials is a client-credentials token source that caches its
// token until shortly before it expires. Concurrent callers that need a
// new token share one token request, which runs apart from any one of
// them, bounded by Timeout; each caller waits for it only as long as its
// own context allows. Safe for concurrent use; must not be copied.
type ClientCredentials struct {
	// Config is the client and its token endpoint.
	Config *clientcredentials.Config
	// Client sends the token requests (its transport carries the TLS trust
	// for the token endpoint). Default: http.DefaultClient.
	Client *http.Client
	// Timeout bounds one token request, whatever Client's own timeout.
	// Default 10s.
	Timeout time.Duration

	mu      sync.Mutex
	tok     *oauth2.Token
	fetches singleflight.Group
}

// Token returns a valid access token, from the cache or a new request.
func (c *ClientCredentials) Token(ctx context.Context) (*oauth2.Token, error) {
	c.mu.Lock()
	tok := c.tok
	c.mu.Unlock()
	if tok.Valid() {
		return tok, nil
	}
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("oauth2: token for %s: %w", c.Config.ClientID, ctx.Err())
	case r := <-c.fetches.DoChan("token", c.fetch):
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*oauth2.Token), nil
	}
}

func (c *ClientCredentials) fetch() (any, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	tok, err := c.Config.Token(context.WithValue(ctx, oauth2.HTTPClient, client))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.tok = tok
	c.mu.Unlock()
	return tok, nil
}
