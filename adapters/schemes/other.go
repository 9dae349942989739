package schemes

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"strings"
)

// Adyen verifies standard Adyen notifications: every item's
// additionalData.hmacSignature is the base64 HMAC-SHA256, keyed with the
// hex-decoded key from the Customer Area, of
// pspReference:originalReference:merchantAccountCode:merchantReference:
// amount.value:amount.currency:eventCode:success, each field escaped
// (\ -> \\, : -> \:). Every item of the batch must verify.
type Adyen struct {
	HexKeys []string
}

type adyenBody struct {
	NotificationItems []struct {
		Item struct {
			AdditionalData map[string]any `json:"additionalData"`
			Amount         struct {
				Value    json.Number
				Currency string
			} `json:"amount"`
			EventCode           string `json:"eventCode"`
			MerchantAccountCode string `json:"merchantAccountCode"`
			MerchantReference   string `json:"merchantReference"`
			OriginalReference   string `json:"originalReference"`
			PSPReference        string `json:"pspReference"`
			Success             string `json:"success"`
		} `json:"NotificationRequestItem"`
	} `json:"notificationItems"`
}

// AdyenSigningString builds the string an Adyen item signature covers.
func AdyenSigningString(psp, original, merchantAccount, merchantRef, value, currency, eventCode, success string) string {
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`)
	fields := []string{psp, original, merchantAccount, merchantRef, value, currency, eventCode, success}
	for i, f := range fields {
		fields[i] = esc.Replace(f)
	}
	return strings.Join(fields, ":")
}

func (s Adyen) Verify(_ context.Context, r *Request) error {
	var b adyenBody
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(&b); err != nil || len(b.NotificationItems) == 0 {
		return fail(ErrMalformed, "not an Adyen notification")
	}
	var keys [][]byte
	for _, k := range s.HexKeys {
		if kb, err := hex.DecodeString(k); err == nil {
			keys = append(keys, kb)
		}
	}
	for i, n := range b.NotificationItems {
		it := n.Item
		sig64, _ := it.AdditionalData["hmacSignature"].(string)
		if sig64 == "" {
			return fail(ErrMissing, "item %d has no hmacSignature", i)
		}
		sig, err := base64.StdEncoding.DecodeString(sig64)
		if err != nil {
			return fail(ErrMalformed, "item %d hmacSignature", i)
		}
		msg := []byte(AdyenSigningString(it.PSPReference, it.OriginalReference, it.MerchantAccountCode, it.MerchantReference,
			it.Amount.Value.String(), it.Amount.Currency, it.EventCode, it.Success))
		ok := false
		for _, k := range keys {
			if equal(hmacSHA256(k, msg), sig) {
				ok = true
			}
		}
		if !ok {
			return fail(ErrSignature, "item %d does not match", i)
		}
	}
	return nil
}

// Basic checks HTTP basic auth against configured user:password pairs in
// constant time.
type Basic struct {
	Credentials map[string]string // user -> password
}

func (s Basic) Verify(_ context.Context, r *Request) error {
	h := r.Header.Get("Authorization")
	enc, ok := strings.CutPrefix(h, "Basic ")
	if !ok {
		return fail(ErrMissing, "no basic credentials")
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return fail(ErrMalformed, "basic credentials")
	}
	user, pw, _ := strings.Cut(string(raw), ":")
	match := false
	for u, p := range s.Credentials {
		// Compare every pair fully, so timing says nothing about which.
		if equal([]byte(u), []byte(user)) && equal([]byte(p), []byte(pw)) {
			match = true
		}
	}
	if !match {
		return fail(ErrSignature, "basic credentials do not match")
	}
	return nil
}

// IPAllowlist admits senders whose address is in one of the prefixes.
type IPAllowlist struct {
	Prefixes []netip.Prefix
}

func (s IPAllowlist) Verify(_ context.Context, r *Request) error {
	a := r.RemoteAddr.Unmap()
	for _, p := range s.Prefixes {
		if p.Contains(a) {
			return nil
		}
	}
	return fail(ErrForbidden, "%s is not on the allow-list", a)
}

// All requires every scheme to pass (a sender may use several, e.g.
// Adyen's HMAC and basic auth).
type All []Scheme

func (all All) Verify(ctx context.Context, r *Request) error {
	for _, s := range all {
		if err := s.Verify(ctx, r); err != nil {
			return err
		}
	}
	return nil
}
