package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/idp/store"
)

// runOIDC checks what OpenID Connect keeps: a client's post-logout
// redirect URIs and subject type, the nonce and authentication of a code,
// the authentication of a token, and the methods of a session's login.
func runOIDC(t *testing.T, newStore func(t *testing.T) Store, now time.Time) {
	ctx := context.Background()
	auth := &store.Authentication{Time: now.Add(-time.Minute), AMR: []string{"pwd", "mfa"}, SessionID: "sid-1"}

	t.Run("openid connect fields", func(t *testing.T) {
		s := newStore(t)
		c := &store.Client{ID: "rp", Grants: []string{"authorization_code"}, RedirectURIs: []string{"https://rp.example/cb"},
			PostLogoutRedirectURIs: []string{"https://rp.example/bye", "https://rp.example/"}, SubjectType: store.SubjectPairwise,
			SectorIdentifier: "rp.example", CreatedAt: now}
		must(t, s.CreateClient(ctx, c))
		got, err := s.GetClient(ctx, "rp")
		must(t, err)
		if !reflect.DeepEqual(got.PostLogoutRedirectURIs, c.PostLogoutRedirectURIs) || got.SubjectType != store.SubjectPairwise || got.SectorIdentifier != "rp.example" {
			t.Fatalf("client = %+v", got)
		}
		must(t, s.CreateClient(ctx, &store.Client{ID: "plain", CreatedAt: now}))
		if got, _ := s.GetClient(ctx, "plain"); got.PostLogoutRedirectURIs != nil || got.SubjectType != "" {
			t.Fatalf("a client without them = %+v", got)
		}

		must(t, s.CreateCode(ctx, &store.AuthCode{Hash: "c1", ClientID: "rp", UserID: "u1", RedirectURI: "https://rp.example/cb",
			CodeChallenge: "x", CodeChallengeMethod: "S256", Nonce: "n-0S6_WzA2Mj", Auth: auth, ExpiresAt: now.Add(time.Minute)}))
		code, err := s.ConsumeCode(ctx, "c1", now)
		must(t, err)
		if code.Nonce != "n-0S6_WzA2Mj" || code.Auth == nil || !code.Auth.Time.Equal(auth.Time) || !reflect.DeepEqual(code.Auth.AMR, auth.AMR) ||
			code.Auth.SessionID != "sid-1" {
			t.Fatalf("code = %+v (auth %+v)", code, code.Auth)
		}
		must(t, s.CreateCode(ctx, &store.AuthCode{Hash: "c2", ClientID: "rp", UserID: "u1", RedirectURI: "x", CodeChallenge: "y",
			CodeChallengeMethod: "S256", ExpiresAt: now.Add(time.Minute)}))
		if code, err := s.ConsumeCode(ctx, "c2", now); err != nil || code.Auth != nil || code.Nonce != "" {
			t.Fatalf("a code without them = %+v, %v", code, err)
		}

		rt := refresh("r1", "fam", "u1", now, now.Add(time.Hour))
		rt.Auth = auth
		must(t, s.InsertTokens(ctx, rt, refresh("r2", "fam2", "u1", now, now.Add(time.Hour))))
		tok, err := s.GetToken(ctx, "r1")
		must(t, err)
		if tok.Auth == nil || !tok.Auth.Time.Equal(auth.Time) || !reflect.DeepEqual(tok.Auth.AMR, auth.AMR) || tok.Auth.SessionID != "sid-1" {
			t.Fatalf("token auth = %+v", tok.Auth)
		}
		if tok, _ := s.GetToken(ctx, "r2"); tok.Auth != nil {
			t.Fatalf("a token without it has %+v", tok.Auth)
		}

		ss := &store.Session{ID: "s1", Level: store.LevelLoggedOn, UserID: "u1", LoginAt: now, AMR: []string{"pwd"}, CreatedAt: now, LastSeen: now,
			IdleExpires: now.Add(time.Hour), Expires: now.Add(time.Hour)}
		must(t, s.CreateSession(ctx, ss))
		if got, err := s.GetSession(ctx, "s1"); err != nil || !reflect.DeepEqual(got.AMR, []string{"pwd"}) {
			t.Fatalf("session = %+v, %v", got, err)
		}
	})
}
