package schemes

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
	"time"
)

// Stripe verifies Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]: HMAC-SHA256
// of "<t>.<body>" keyed with the whsec_ string itself. v0 entries are
// ignored; any v1 with any secret passes.
type Stripe struct {
	Secrets   []string
	Tolerance time.Duration // default 5m
}

func (s Stripe) Verify(_ context.Context, r *Request) error {
	h := r.Header.Get("Stripe-Signature")
	if h == "" {
		return fail(ErrMissing, "no Stripe-Signature header")
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fail(ErrMalformed, "Stripe-Signature needs t and v1")
	}
	if !within(time.Unix(sec, 0), r.Now, tolerance(s.Tolerance)) {
		return fail(ErrTimestamp, "t=%d", sec)
	}
	msg := append([]byte(ts+"."), r.Body...)
	for _, secret := range s.Secrets {
		want := hmacSHA256([]byte(secret), msg)
		for _, sig := range sigs {
			if equal(want, sig) {
				return nil
			}
		}
	}
	return fail(ErrSignature, "no v1 signature matches")
}

func tolerance(d time.Duration) time.Duration {
	if d <= 0 {
		return 5 * time.Minute
	}
	return d
}

// StandardWebhooks verifies the Standard Webhooks scheme (and Svix, its
// origin, with svix-* header names): webhook-id, webhook-timestamp and
// webhook-signature carrying space-separated "v1,<base64 HMAC>" (secrets
// whsec_<base64>) and "v1a,<base64 Ed25519>" (public keys whpk_<base64>)
// over "<id>.<timestamp>.<body>".
type StandardWebhooks struct {
	Secrets    []string // whsec_…
	PublicKeys []string // whpk_…
	Tolerance  time.Duration
}

func (s StandardWebhooks) Verify(_ context.Context, r *Request) error {
	get := func(name string) string {
		if v := r.Header.Get("Webhook-" + name); v != "" {
			return v
		}
		return r.Header.Get("Svix-" + name)
	}
	id, ts, sigHeader := get("Id"), get("Timestamp"), get("Signature")
	if id == "" || ts == "" || sigHeader == "" {
		return fail(ErrMissing, "webhook-id, webhook-timestamp and webhook-signature are required")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fail(ErrMalformed, "webhook-timestamp %q", ts)
	}
	if !within(time.Unix(sec, 0), r.Now, tolerance(s.Tolerance)) {
		return fail(ErrTimestamp, "webhook-timestamp %d", sec)
	}
	msg := []byte(id + "." + ts + "." + string(r.Body))
	var macs [][]byte
	for _, secret := range s.Secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err == nil {
			macs = append(macs, hmacSHA256(key, msg))
		}
	}
	var pubs []ed25519.PublicKey
	for _, pk := range s.PublicKeys {
		if b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(pk, "whpk_")); err == nil && len(b) == ed25519.PublicKeySize {
			pubs = append(pubs, b)
		}
	}
	for _, entry := range strings.Fields(sigHeader) {
		version, sig64, ok := strings.Cut(entry, ",")
		if !ok {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(sig64)
		if err != nil {
			continue
		}
		switch version {
		case "v1":
			for _, m := range macs {
				if equal(m, sig) {
					return nil
				}
			}
		case "v1a":
			for _, pub := range pubs {
				if ed25519.Verify(pub, msg, sig) {
					return nil
				}
			}
		}
	}
	return fail(ErrSignature, "no signature matches")
}

// BodyHMAC is the family of schemes that sign the raw body (optionally
// behind a prefix) with HMAC-SHA256: GitHub (X-Hub-Signature-256,
// "sha256=" hex), Shopify (X-Shopify-Hmac-Sha256, base64), GoCardless
// (Webhook-Signature, hex), Square (x-square-hmacsha256-signature, base64,
// over the notification URL then the body).
type BodyHMAC struct {
	Header  string
	Prefix  string // before the signature in the header, e.g. "sha256="
	Base64  bool   // else hex
	URL     string // signed before the body (Square: the URL as registered)
	Secrets []string
}

// GitHub returns the GitHub scheme.
func GitHub(secrets ...string) BodyHMAC {
	return BodyHMAC{Header: "X-Hub-Signature-256", Prefix: "sha256=", Secrets: secrets}
}

// Shopify returns the Shopify scheme.
func Shopify(secrets ...string) BodyHMAC {
	return BodyHMAC{Header: "X-Shopify-Hmac-Sha256", Base64: true, Secrets: secrets}
}

// GoCardless returns the GoCardless scheme.
func GoCardless(secrets ...string) BodyHMAC {
	return BodyHMAC{Header: "Webhook-Signature", Secrets: secrets}
}

// Square returns the Square scheme for a notification URL exactly as
// registered with Square.
func Square(notificationURL string, keys ...string) BodyHMAC {
	return BodyHMAC{Header: "X-Square-Hmacsha256-Signature", Base64: true, URL: notificationURL, Secrets: keys}
}

// headerSignature reads a signature from header, behind prefix, in hex or
// base64.
func headerSignature(r *Request, header, prefix string, b64 bool) ([]byte, error) {
	h := r.Header.Get(header)
	if h == "" {
		return nil, fail(ErrMissing, "no %s header", header)
	}
	v, ok := strings.CutPrefix(h, prefix)
	if !ok {
		return nil, fail(ErrMalformed, "%s lacks %q", header, prefix)
	}
	sig, err := decode(v, b64)
	if err != nil {
		return nil, fail(ErrMalformed, "%s: %v", header, err)
	}
	return sig, nil
}

func (s BodyHMAC) Verify(_ context.Context, r *Request) error {
	sig, err := headerSignature(r, s.Header, s.Prefix, s.Base64)
	if err != nil {
		return err
	}
	msg := append([]byte(s.URL), r.Body...)
	for _, secret := range s.Secrets {
		if equal(hmacSHA256([]byte(secret), msg), sig) {
			return nil
		}
	}
	return fail(ErrSignature, "%s does not match", s.Header)
}

func decode(v string, b64 bool) ([]byte, error) {
	if b64 {
		return base64.StdEncoding.DecodeString(v)
	}
	return hex.DecodeString(strings.ToLower(v))
}

// HMAC is the generic scheme for banks: a header carrying an HMAC
// (SHA-256 or SHA-512, hex or base64, optional prefix) over a template of
// the signed string, where {body} is the raw body and {timestamp} the
// value of TimestampHeader, checked against Tolerance when set.
type HMAC struct {
	Header          string
	Prefix          string
	Algorithm       string // sha256 (default) or sha512
	Base64          bool
	Template        string // default "{body}"
	TimestampHeader string
	Tolerance       time.Duration
	Secrets         []string
}

func (s HMAC) Verify(_ context.Context, r *Request) error {
	sig, err := headerSignature(r, s.Header, s.Prefix, s.Base64)
	if err != nil {
		return err
	}
	tpl := s.Template
	if tpl == "" {
		tpl = "{body}"
	}
	ts := ""
	if s.TimestampHeader != "" {
		ts = r.Header.Get(s.TimestampHeader)
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return fail(ErrMissing, "%s must be a unix time", s.TimestampHeader)
		}
		if !within(time.Unix(sec, 0), r.Now, tolerance(s.Tolerance)) {
			return fail(ErrTimestamp, "%s %d", s.TimestampHeader, sec)
		}
	}
	before, after, hasBody := strings.Cut(tpl, "{body}")
	msg := []byte(strings.ReplaceAll(before, "{timestamp}", ts))
	if hasBody {
		msg = append(msg, r.Body...)
		msg = append(msg, strings.ReplaceAll(after, "{timestamp}", ts)...)
	}
	newHash := func() hash.Hash { return sha256.New() }
	if s.Algorithm == "sha512" {
		newHash = sha512.New
	}
	for _, secret := range s.Secrets {
		if equal(mac(newHash, []byte(secret), msg), sig) {
			return nil
		}
	}
	return fail(ErrSignature, "%s does not match", s.Header)
}
