package schemes

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	svix "github.com/svix/svix-webhooks/go"
)

// Payloads signed by the senders' own libraries.
func TestSignedByStandardWebhooksAndSvixLibraries(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"type":"invoice.paid","id":"inv_1"}`)
	now := time.Now()
	sw, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sw.Sign("msg_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	s := StandardWebhooks{Secrets: []string{secret}}
	r := &Request{Header: http.Header{}, Body: body, Now: now}
	r.Header.Set("webhook-id", "msg_1")
	r.Header.Set("webhook-timestamp", itoa(now.Unix()))
	r.Header.Set("webhook-signature", sig)
	if err := s.Verify(context.Background(), r); err != nil {
		t.Fatalf("standard-webhooks library signature: %v", err)
	}
	r.Body = []byte(`{"type":"invoice.paid","id":"inv_2"}`)
	if err := s.Verify(context.Background(), r); !errors.Is(err, ErrSignature) {
		t.Fatalf("tampered: %v", err)
	}

	sv, err := svix.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	sig, err = sv.Sign("msg_2", now, body)
	if err != nil {
		t.Fatal(err)
	}
	r = &Request{Header: http.Header{}, Body: body, Now: now}
	r.Header.Set("svix-id", "msg_2")
	r.Header.Set("svix-timestamp", itoa(now.Unix()))
	r.Header.Set("svix-signature", sig)
	if err := s.Verify(context.Background(), r); err != nil {
		t.Fatalf("svix library signature: %v", err)
	}
	r.Now = now.Add(10 * time.Minute)
	if err := s.Verify(context.Background(), r); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("old: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
