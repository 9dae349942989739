package demo

import (
	"context"

	"github.com/ficus-gw/ficus/idp"
)

// Credentials are what the demo seeds, for people and scripts.
type Credentials struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Username     string `json:"username"`
	Password     string `json:"password"`
	TokenURL     string `json:"token_url"`
}

// Seed creates the demo client (its secret generated), DemoUser with
// password (the monolith's password for them), and the client of the Stripe web-hook adapter with
// adapterSecret. TokenURL is left to the caller, who knows the address.
func Seed(ctx context.Context, p *idp.Provider, password, adapterSecret string) (Credentials, error) {
	secret, err := p.CreateClient(ctx, idp.NewClient{ID: "demo-app", Name: "Demo app", FirstParty: true,
		Grants: []string{idp.GrantClientCredentials, idp.GrantPassword, idp.GrantRefreshToken, idp.PermissionIntrospect},
		Scopes: []string{"orders.read", "orders.write", "profile"}})
	if err != nil {
		return Credentials{}, err
	}
	if _, err := p.CreateUser(ctx, idp.NewUser{Username: DemoUser.Username, Password: password, CustomerNumber: DemoUser.CustomerNumber,
		Claims: map[string]any{"name": DemoUser.Name}}); err != nil {
		return Credentials{}, err
	}
	if _, err := p.CreateClient(ctx, idp.NewClient{ID: "demo-stripe-adapter", Name: "Stripe web-hook adapter", Secret: adapterSecret,
		Grants: []string{idp.GrantClientCredentials}, Scopes: []string{"payments.notify"}}); err != nil {
		return Credentials{}, err
	}
	return Credentials{ClientID: "demo-app", ClientSecret: secret, Username: DemoUser.Username, Password: password}, nil
}
