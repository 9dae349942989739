package schemes

import (
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// Vectors published by the senders or their SDKs (see shared/webhook-vectors.md).
const (
	swSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swID      = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTS      = "1614265330"
	swBody    = `{"test": 2432232314}`
	swSig     = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	swPub     = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
	swSigV1a  = "v1a,fldxM4gAKugP6nnt1hdz3sgGfZ6d99nzrMFnZOELIxbzEHoVmAb2ADpkJK7zgPePmPsle0zV9jSeGlHFG2NVAw=="
	sw2Secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
	sw2ID     = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"
	sw2TS     = "1649367553"
	sw2Body   = `{"email":"test@example.com","username":"test_user"}`
	sw2Sig    = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="

	stripeSecret = "whsec_testsecretvaluefordocs00000000"
	stripeBody   = `{"id":"evt_1","type":"payment_intent.succeeded"}`
	stripeHeader = "t=1790000000,v1=294dfeafa5b7c9d6efbdb7ad3e3ee540dcf4e94924ac0b65ac12b839971a120a"

	ghSecret = "It's a Secret to Everybody"
	ghBody   = "Hello, World!"
	ghSig    = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	shopSig  = "dXEH6g6yUJ/CESIczphLijdXC211hsIsRvQ3nIsEPhc="

	squareKey  = "Ibxx_5AKakO-3qeNVR61Dw"
	squareURL  = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9"
	squareBody = `{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification","event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z","data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}`
	squareSig  = "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4="

	adyenKey = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
)

func req(now int64, body string, hdr ...string) *Request {
	r := &Request{Header: http.Header{}, Body: []byte(body), Now: time.Unix(now, 0), RemoteAddr: netip.MustParseAddr("192.0.2.10")}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

func adyenNotification(value, eventCode, sig string) string {
	return fmt.Sprintf(`{"live":"false","notificationItems":[{"NotificationRequestItem":{"additionalData":{"hmacSignature":%q},
"amount":{"currency":"EUR","value":%s},"eventCode":%q,"merchantAccountCode":"TestMerchant","merchantReference":"TestPayment-1407325143704",
"originalReference":"","pspReference":"7914073381342284","success":"true"}}]}`, sig, value, eventCode)
}

func TestPublishedVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		scheme Scheme
		req    *Request
		want   error
	}{
		{"standard webhooks v1", StandardWebhooks{Secrets: []string{swSecret}}, req(1614265330, swBody, "webhook-id", swID, "webhook-timestamp", swTS, "webhook-signature", swSig), nil},
		{"standard webhooks v1 (2)", StandardWebhooks{Secrets: []string{sw2Secret}}, req(1649367553, sw2Body, "webhook-id", sw2ID, "webhook-timestamp", sw2TS, "webhook-signature", sw2Sig), nil},
		{"svix header names", StandardWebhooks{Secrets: []string{swSecret}}, req(1614265330, swBody, "svix-id", swID, "svix-timestamp", swTS, "svix-signature", swSig), nil},
		{"v1a Ed25519", StandardWebhooks{PublicKeys: []string{swPub}}, req(1614265330, swBody, "webhook-id", swID, "webhook-timestamp", swTS, "webhook-signature", swSigV1a), nil},
		{"several signatures, one valid", StandardWebhooks{Secrets: []string{swSecret}}, req(1614265330, swBody, "webhook-id", swID, "webhook-timestamp", swTS, "webhook-signature", "v1,Zm9v "+swSig), nil},
		{"rotated secrets", StandardWebhooks{Secrets: []string{sw2Secret, swSecret}}, req(1614265330, swBody, "webhook-id", swID, "webhook-timestamp", swTS, "webhook-signature", swSig), nil},
		{"standard webhooks tampered", StandardWebhooks{Secrets: []string{swSecret}}, req(1614265330, `{"test": 2432232315}`, "webhook-id", swID, "webhook-timestamp", swTS, "webhook-signature", swSig), ErrSignature},
		{"standard webhooks wrong secret", StandardWebhooks{Secrets: []string{sw2Secret}}, req(1614265330, swBody, "webhook-id", swID, "webhook-timestamp", swTS, "webhook-signature", swSig), ErrSignature},
		{"standard webhooks old", StandardWebhooks{Secrets: []string{swSecret}}, req(1614265330+301, swBody, "webhook-id", swID, "webhook-timestamp", swTS, "webhook-signature", swSig), ErrTimestamp},
		{"standard webhooks future", StandardWebhooks{Secrets: []string{swSecret}}, req(1614265330-301, swBody, "webhook-id", swID, "webhook-timestamp", swTS, "webhook-signature", swSig), ErrTimestamp},
		{"standard webhooks missing", StandardWebhooks{Secrets: []string{swSecret}}, req(1614265330, swBody), ErrMissing},
		{"v1a does not accept a v1 HMAC as Ed25519", StandardWebhooks{PublicKeys: []string{swPub}}, req(1614265330, swBody, "webhook-id", swID, "webhook-timestamp", swTS, "webhook-signature", swSig), ErrSignature},

		{"stripe", Stripe{Secrets: []string{stripeSecret}}, req(1790000000, stripeBody, "Stripe-Signature", stripeHeader), nil},
		{"stripe with v0 and a second v1", Stripe{Secrets: []string{"whsec_other", stripeSecret}}, req(1790000010, stripeBody, "Stripe-Signature", stripeHeader+",v1=00ff,v0=deadbeef"), nil},
		{"stripe v0 only", Stripe{Secrets: []string{stripeSecret}}, req(1790000000, stripeBody, "Stripe-Signature", "t=1790000000,v0=294dfeafa5b7c9d6efbdb7ad3e3ee540dcf4e94924ac0b65ac12b839971a120a"), ErrMalformed},
		{"stripe tampered", Stripe{Secrets: []string{stripeSecret}}, req(1790000000, stripeBody+" ", "Stripe-Signature", stripeHeader), ErrSignature},
		{"stripe old", Stripe{Secrets: []string{stripeSecret}}, req(1790000000+301, stripeBody, "Stripe-Signature", stripeHeader), ErrTimestamp},
		{"stripe missing", Stripe{Secrets: []string{stripeSecret}}, req(1790000000, stripeBody), ErrMissing},

		{"github", GitHub(ghSecret), req(0, ghBody, "X-Hub-Signature-256", ghSig), nil},
		{"github wrong secret", GitHub("nope"), req(0, ghBody, "X-Hub-Signature-256", ghSig), ErrSignature},
		{"github without prefix", GitHub(ghSecret), req(0, ghBody, "X-Hub-Signature-256", ghSig[7:]), ErrMalformed},
		{"shopify", Shopify(ghSecret), req(0, ghBody, "X-Shopify-Hmac-Sha256", shopSig), nil},
		{"shopify tampered", Shopify(ghSecret), req(0, ghBody+"!", "X-Shopify-Hmac-Sha256", shopSig), ErrSignature},
		{"gocardless (hex HMAC of the body)", GoCardless(ghSecret), req(0, ghBody, "Webhook-Signature", ghSig[7:]), nil},
		{"square", Square(squareURL, squareKey), req(0, squareBody, "x-square-hmacsha256-signature", squareSig), nil},
		{"square escaping", Square("https://webhook.site/webhooks", "signature-key"), req(0, `{"data":{"type":"webhooks","id":">id<"}}`, "x-square-hmacsha256-signature", "Cxt7+aTi4rKgcA0bC4g9EHdVtLSDWdqccmL5MvihU4U="), nil},
		{"square wrong URL", Square(squareURL+"x", squareKey), req(0, squareBody, "x-square-hmacsha256-signature", squareSig), ErrSignature},

		{"adyen", Adyen{HexKeys: []string{adyenKey}}, req(0, adyenNotification("1130", "AUTHORISATION", "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0=")), nil},
		{"adyen (2)", Adyen{HexKeys: []string{adyenKey}}, req(0, adyenNotification("0", "REFUND", "J7HhsgZo5KwqdB7LFZJV6rfQgp+RqC2kuYyw/3x3w+8=")), nil},
		{"adyen amount changed", Adyen{HexKeys: []string{adyenKey}}, req(0, adyenNotification("1131", "AUTHORISATION", "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0=")), ErrSignature},
		{"adyen not JSON", Adyen{HexKeys: []string{adyenKey}}, req(0, "[accepted]"), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.scheme.Verify(context.Background(), tt.req)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAdyenSigningStringEscapes(t *testing.T) {
	t.Parallel()
	got := AdyenSigningString(`a:b`, `c\d`, "m", "", "1", "EUR", "E", "true")
	if want := `a\:b:c\\d:m::1:EUR:E:true`; got != want {
		t.Fatalf("%s, want %s", got, want)
	}
}

func TestGenericHMAC(t *testing.T) {
	t.Parallel()
	secret, body := "bank-secret", `{"payment":"p-1"}`
	m := hmac.New(sha512.New, []byte(secret))
	m.Write([]byte("1700000000." + body))
	sig := base64.StdEncoding.EncodeToString(m.Sum(nil))
	s := HMAC{Header: "X-Bank-Signature", Prefix: "v1=", Algorithm: "sha512", Base64: true, Template: "{timestamp}.{body}",
		TimestampHeader: "X-Bank-Timestamp", Secrets: []string{"old", secret}}
	if err := s.Verify(context.Background(), req(1700000030, body, "X-Bank-Signature", "v1="+sig, "X-Bank-Timestamp", "1700000000")); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(context.Background(), req(1700000030, body, "X-Bank-Signature", "v1="+sig, "X-Bank-Timestamp", "1700000001")); !errors.Is(err, ErrSignature) {
		t.Fatalf("timestamp is signed: %v", err)
	}
	if err := s.Verify(context.Background(), req(1700001000, body, "X-Bank-Signature", "v1="+sig, "X-Bank-Timestamp", "1700000000")); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("old: %v", err)
	}
	if err := s.Verify(context.Background(), req(1700000030, body, "X-Bank-Signature", "v1="+sig)); !errors.Is(err, ErrMissing) {
		t.Fatalf("no timestamp: %v", err)
	}
}

func TestBasicAndAllowlistAndAll(t *testing.T) {
	t.Parallel()
	basic := Basic{Credentials: map[string]string{"adyen": "s3cret"}}
	allow := IPAllowlist{Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	ok := req(0, "", "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("adyen:s3cret")))
	if err := (All{basic, allow}).Verify(context.Background(), ok); err != nil {
		t.Fatal(err)
	}
	bad := req(0, "", "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("adyen:wrong")))
	if err := basic.Verify(context.Background(), bad); !errors.Is(err, ErrSignature) {
		t.Fatal(err)
	}
	outside := req(0, "")
	outside.RemoteAddr = netip.MustParseAddr("::ffff:203.0.113.9")
	if err := allow.Verify(context.Background(), outside); !errors.Is(err, ErrForbidden) {
		t.Fatal(err)
	}
	if err := basic.Verify(context.Background(), req(0, "")); !errors.Is(err, ErrMissing) {
		t.Fatal(err)
	}
}
