package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/strangler/verify"
	"github.com/golang-jwt/jwt/v5"
)

// Remote is the Issuer of an IDP in another process: the gateway
// authenticates as its own client, introspects tokens with the RFC 9701
// signed answer (verified against the IDP's JWKS) and obtains JWTs for
// upstreams by RFC 8693 token exchange.
type Remote struct {
	issuer, clientID, secret string
	client                   *http.Client
	keys                     *verify.Verifier // the IDP's JWKS
	callers                  *verify.Verifier // callers' own JWTs (policy jwt)
}

// RemoteOptions configure a Remote issuer.
type RemoteOptions struct {
	// Issuer is the IDP's base URL; endpoints are taken from it.
	Issuer string
	// ClientID and ClientSecret authenticate the gateway; the client needs
	// the introspection permission and the token-exchange grant, with the
	// upstreams' audiences.
	ClientID, ClientSecret string
	// JWTAudience is what callers' JWTs must carry on jwt routes.
	JWTAudience string
	// Client makes the calls. Default: 5s timeout.
	Client *http.Client
}

// NewRemote returns a Remote issuer and fetches the IDP's keys.
func NewRemote(ctx context.Context, o RemoteOptions) (*Remote, error) {
	if o.Issuer == "" || o.ClientID == "" || o.ClientSecret == "" {
		return nil, errors.New("auth: the remote IDP needs its issuer URL and the gateway's client id and secret")
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if o.JWTAudience == "" {
		o.JWTAudience = "ficus-gateway"
	}
	r := &Remote{issuer: strings.TrimSuffix(o.Issuer, "/"), clientID: o.ClientID, secret: o.ClientSecret, client: o.Client}
	jwks := r.issuer + "/.well-known/jwks.json"
	var err error
	// Introspection answers are addressed to the gateway's client id.
	r.keys, err = verify.New(ctx, verify.Options{JWKSURL: jwks, Issuer: r.issuer, Audience: o.ClientID, Client: o.Client})
	if r.keys == nil {
		return nil, err
	}
	r.callers, _ = verify.New(ctx, verify.Options{JWKSURL: jwks, Issuer: r.issuer, Audience: o.JWTAudience, Client: o.Client})
	return r, err
}

var _ Issuer = (*Remote)(nil)

func (r *Remote) post(ctx context.Context, path string, form url.Values, accept string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", accept)
	req.SetBasicAuth(url.QueryEscape(r.clientID), url.QueryEscape(r.secret))
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, b, err
}

// Resolve implements Issuer with RFC 7662 introspection, answered as an
// RFC 9701 JWT.
func (r *Remote) Resolve(ctx context.Context, token string) (*Principal, error) {
	resp, body, err := r.post(ctx, "/oauth2/introspect", url.Values{"token": {token}}, "application/token-introspection+jwt")
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("introspection: %s", resp.Status)
	}
	var claims jwt.MapClaims
	t, err := jwt.ParseWithClaims(string(body), &claims, r.keys.Keyfunc(ctx), jwt.WithValidMethods(r.keys.Algorithms()),
		jwt.WithIssuer(r.issuer), jwt.WithAudience(r.clientID), jwt.WithIssuedAt(), jwt.WithLeeway(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("introspection answer does not verify: %w", err)
	}
	if typ, _ := t.Header["typ"].(string); typ != "token-introspection+jwt" {
		return nil, fmt.Errorf("introspection answer has typ %q", typ)
	}
	raw, _ := json.Marshal(claims["token_introspection"])
	var in struct {
		Active         bool   `json:"active"`
		Scope          string `json:"scope"`
		ClientID       string `json:"client_id"`
		Sub            string `json:"sub"`
		Exp            int64  `json:"exp"`
		Level          string `json:"level"`
		CustomerNumber string `json:"customer_number"`
		DeviceID       string `json:"device_id"`
		TokenType      string `json:"token_type"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, err
	}
	if !in.Active || in.TokenType == "refresh_token" {
		return nil, ErrInvalidToken
	}
	p := &Principal{ClientID: in.ClientID, Subject: in.Sub, Scope: in.Scope, Level: in.Level, Expires: time.Unix(in.Exp, 0),
		Claims: map[string]string{}, Ref: token}
	if in.CustomerNumber != "" {
		p.Claims["customer_number"] = in.CustomerNumber
	}
	if in.DeviceID != "" {
		p.Claims["device_id"] = in.DeviceID
	}
	return p, nil
}

// Mint implements Issuer with an RFC 8693 token exchange.
func (r *Remote) Mint(ctx context.Context, p *Principal, audience string) (string, time.Time, error) {
	subject, ok := p.Ref.(string)
	if !ok {
		return "", time.Time{}, errors.New("auth: the remote IDP can only exchange opaque tokens")
	}
	resp, body, err := r.post(ctx, "/oauth2/token", url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {subject},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "audience": {audience},
		"requested_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
	}, "application/json")
	if err != nil {
		return "", time.Time{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", time.Time{}, fmt.Errorf("token exchange: %s %s", resp.Status, body)
	}
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.AccessToken == "" {
		return "", time.Time{}, errors.New("token exchange: no token in the answer")
	}
	return out.AccessToken, time.Now().Add(time.Duration(out.ExpiresIn) * time.Second), nil
}

// Anonymous implements Issuer: application tokens for anonymous callers
// are minted by the local IDP only.
func (r *Remote) Anonymous(context.Context, string) (*Principal, error) {
	return nil, errors.New("auth: policy optional needs the IDP in the same process")
}

// VerifyJWT implements Issuer: the caller's JWT is verified against the
// remote JWKS; re-minting it needs the local IDP.
func (r *Remote) VerifyJWT(ctx context.Context, token, _ string) (*Principal, error) {
	c, err := r.callers.Verify(ctx, token)
	if err != nil {
		return nil, ErrInvalidToken
	}
	exp := time.Time{}
	if c.ExpiresAt != nil {
		exp = c.ExpiresAt.Time
	}
	return &Principal{ClientID: c.ClientID, Subject: c.Subject, Scope: c.Scope, Level: c.Level, Expires: exp, Claims: map[string]string{}}, nil
}
