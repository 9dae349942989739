package adapters

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/adapters/schemes"
	"github.com/ficus-gw/ficus/routes"
)

// Webhooks is the `webhooks` section of the process configuration.
type Webhooks struct {
	Adapters []Config `yaml:"adapters" validate:"dive"`
	// DedupeWindow is how long delivered and dead events (and so their ids,
	// for duplicate detection) are kept. Default 744h (31 days, past Adyen's
	// 30 days of retries).
	DedupeWindow time.Duration `yaml:"dedupe_window" validate:"gte=0"`
	Delivery     struct {
		Workers int           `yaml:"workers" validate:"gte=0"`
		MaxAge  time.Duration `yaml:"max_age" validate:"gte=0"`
		// Lease reserves a claimed event for its worker (default 1m); an
		// event whose worker died is delivered again after it.
		Lease time.Duration `yaml:"lease" validate:"gte=0"`
	} `yaml:"delivery"`
}

// Config declares one web-hook adapter. Secret fields hold references
// (env:NAME or file:PATH), resolved when ficus starts.
type Config struct {
	// Name identifies the adapter (metrics, the inbox, the CLI).
	Name string `yaml:"name"`
	// Path is where the sender posts, on the front door.
	Path string `yaml:"path"`
	// Schemes must all pass.
	Schemes []SchemeConfig `yaml:"schemes"`
	// EventID says where the sender's event id is: a header, or a JSON
	// pointer into the body. Default: the first scheme's sender's.
	EventID struct {
		Header  string `yaml:"header"`
		Pointer string `yaml:"pointer"`
	} `yaml:"event_id"`
	// OrderKey, a JSON pointer into the body (e.g. /data/payment_reference),
	// makes events with the same value go out one at a time, in order of
	// arrival. Empty: no ordering.
	OrderKey string `yaml:"order_key"`
	// Sync delivers each new event at once and answers the sender with the
	// target's answer (the event is stored first).
	Sync bool `yaml:"sync"`
	// ContentTypes accepted (others: 415). Default the sender's.
	ContentTypes []string `yaml:"content_types"`
	// MaxBody in bytes (512KiB, 1MiB, …); default 1 MiB.
	MaxBody routes.ByteSize `yaml:"max_body"`
	// Answer to an accepted event; default the sender's expectation.
	Answer *Answer `yaml:"answer"`
	// BadSignatureStatus overrides 401 (default 498 for gocardless).
	BadSignatureStatus int `yaml:"bad_signature_status" validate:"omitempty,gte=400,lte=599"`
	// KeepHeaders are stored and delivered with the event.
	KeepHeaders []string `yaml:"keep_headers"`
	// Target is the path behind the gateway that receives the events.
	Target string `yaml:"target"`
	// ClientID and ClientSecret are the adapter's own OAuth2 client.
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
}

// SchemeConfig declares one verification scheme.
type SchemeConfig struct {
	// Type: stripe, standard-webhooks, github, shopify, square, gocardless,
	// hmac, adyen, basic, ip-allowlist, jwt.
	Type       string        `yaml:"type"`
	Secrets    []string      `yaml:"secrets"`     // references
	PublicKeys []string      `yaml:"public_keys"` // standard-webhooks whpk_… (not secret)
	Tolerance  time.Duration `yaml:"tolerance"`
	// square: the notification URL exactly as registered.
	URL string `yaml:"url"`
	// hmac
	Header          string `yaml:"header"`
	Prefix          string `yaml:"prefix"`
	Algorithm       string `yaml:"algorithm"`
	Encoding        string `yaml:"encoding"`
	Template        string `yaml:"template"`
	TimestampHeader string `yaml:"timestamp_header"`
	// basic: user -> password reference
	Users map[string]string `yaml:"users"`
	// ip-allowlist
	CIDRs []string `yaml:"cidrs"`
	// jwt: the sender's JWKS
	JWKSURL string        `yaml:"jwks_url"`
	MaxAge  time.Duration `yaml:"max_age"`
}

// defaults per sender: the event id and the answer it expects.
var senderDefaults = map[string]struct {
	header, pointer string
	answer          Answer
	badSig          int
	types           []string
}{
	"stripe":            {pointer: "/id", types: jsonOnly},
	"standard-webhooks": {header: "Webhook-Id", types: jsonOnly},
	"github":            {header: "X-GitHub-Delivery", types: []string{"application/json", "application/x-www-form-urlencoded"}},
	"shopify":           {header: "X-Shopify-Webhook-Id", types: jsonOnly},
	"square":            {pointer: "/event_id", types: jsonOnly},
	"gocardless":        {pointer: "/events/0/id", answer: Answer{Status: 204}, badSig: 498, types: jsonOnly},
	"adyen":             {pointer: "/notificationItems/0/NotificationRequestItem/pspReference", answer: Answer{Status: 200, Body: "[accepted]"}, types: jsonOnly},
	"jwt":               {answer: Answer{Status: 200}, types: jsonOnly},
}

var jsonOnly = []string{"application/json"}

// Build resolves secrets and returns the adapter's ingest handler.
func (c Config) Build(resolve func(ref string) (string, error), in Inserter) (*Ingest, error) {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if c.Name == "" || !strings.HasPrefix(c.Path, "/") || !strings.HasPrefix(c.Target, "/") || c.ClientID == "" || c.ClientSecret == "" {
		add("adapter %q: name, path (/…), target (/…), client_id and client_secret are required", c.Name)
	}
	if _, err := resolve(c.ClientSecret); c.ClientSecret != "" && err != nil {
		add("adapter %q: client_secret: %v", c.Name, err)
	}
	if len(c.Schemes) == 0 {
		add("adapter %q: at least one scheme is required", c.Name)
	}
	var all schemes.All
	for i, sc := range c.Schemes {
		s, err := sc.build(resolve)
		if err != nil {
			add("adapter %q: schemes[%d] (%s): %v", c.Name, i, sc.Type, err)
			continue
		}
		all = append(all, s)
	}
	in2 := &Ingest{Name: c.Name, Scheme: all, Inbox: in, MaxBody: int64(c.MaxBody), EventIDHeader: c.EventID.Header,
		EventIDPointer: c.EventID.Pointer, BadSignatureStatus: c.BadSignatureStatus, KeepHeaders: c.KeepHeaders, OrderKeyPointer: c.OrderKey}
	if len(c.Schemes) > 0 {
		d := senderDefaults[c.Schemes[0].Type]
		if in2.EventIDHeader == "" && in2.EventIDPointer == "" {
			in2.EventIDHeader, in2.EventIDPointer = d.header, d.pointer
		}
		in2.Accepted = d.answer
		in2.ContentTypes = d.types
		if in2.BadSignatureStatus == 0 {
			in2.BadSignatureStatus = d.badSig
		}
	}
	if len(c.ContentTypes) > 0 {
		in2.ContentTypes = c.ContentTypes
	}
	if c.Answer != nil {
		in2.Accepted = *c.Answer
	}
	if in2.EventIDHeader == "" && in2.EventIDPointer == "" {
		add("adapter %q: event_id needs a header or a JSON pointer", c.Name)
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	return in2, nil
}

func (sc SchemeConfig) build(resolve func(string) (string, error)) (schemes.Scheme, error) {
	var secrets []string
	for _, ref := range sc.Secrets {
		v, err := resolve(ref)
		if err != nil {
			return nil, err
		}
		secrets = append(secrets, v)
	}
	needSecrets := func() error {
		if len(secrets) == 0 {
			return errors.New("secrets are required")
		}
		return nil
	}
	switch sc.Type {
	case "stripe":
		return schemes.Stripe{Secrets: secrets, Tolerance: sc.Tolerance}, needSecrets()
	case "standard-webhooks":
		if len(secrets) == 0 && len(sc.PublicKeys) == 0 {
			return nil, errors.New("secrets (whsec_) or public_keys (whpk_) are required")
		}
		return schemes.StandardWebhooks{Secrets: secrets, PublicKeys: sc.PublicKeys, Tolerance: sc.Tolerance}, nil
	case "github":
		return schemes.GitHub(secrets...), needSecrets()
	case "shopify":
		return schemes.Shopify(secrets...), needSecrets()
	case "gocardless":
		return schemes.GoCardless(secrets...), needSecrets()
	case "square":
		if sc.URL == "" {
			return nil, errors.New("url (the notification URL as registered) is required")
		}
		return schemes.Square(sc.URL, secrets...), needSecrets()
	case "adyen":
		return schemes.Adyen{HexKeys: secrets}, needSecrets()
	case "hmac":
		if sc.Header == "" {
			return nil, errors.New("header is required")
		}
		if sc.Algorithm != "" && sc.Algorithm != "sha256" && sc.Algorithm != "sha512" {
			return nil, errors.New("algorithm must be sha256 or sha512")
		}
		if sc.Encoding != "" && sc.Encoding != "hex" && sc.Encoding != "base64" {
			return nil, errors.New("encoding must be hex or base64")
		}
		return schemes.HMAC{Header: sc.Header, Prefix: sc.Prefix, Algorithm: sc.Algorithm, Base64: sc.Encoding == "base64",
			Template: sc.Template, TimestampHeader: sc.TimestampHeader, Tolerance: sc.Tolerance, Secrets: secrets}, needSecrets()
	case "basic":
		creds := map[string]string{}
		for u, ref := range sc.Users {
			v, err := resolve(ref)
			if err != nil {
				return nil, err
			}
			creds[u] = v
		}
		if len(creds) == 0 {
			return nil, errors.New("users are required")
		}
		return schemes.Basic{Credentials: creds}, nil
	case "ip-allowlist":
		var ps []netip.Prefix
		for _, c := range sc.CIDRs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return nil, fmt.Errorf("cidr %q: %v", c, err)
			}
			ps = append(ps, p.Masked())
		}
		if len(ps) == 0 {
			return nil, errors.New("cidrs are required")
		}
		return schemes.IPAllowlist{Prefixes: ps}, nil
	case "jwt":
		if sc.JWKSURL == "" {
			return nil, errors.New("jwks_url is required")
		}
		return schemes.JWT{MaxAge: sc.MaxAge, Keys: &schemes.JWKSKeys{URL: sc.JWKSURL}}, nil
	}
	return nil, fmt.Errorf("unknown scheme type %q", sc.Type)
}
