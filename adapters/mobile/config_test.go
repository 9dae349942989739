package mobile_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/adapters/mobile"
)

// Found by the issue-8 attack run: two apps with one key were accepted —
// the later one silently took the key, with its own rates and disabled
// flag — and the messages ended in a Go "(<nil>)".
func TestAppConfigProblemsInWords(t *testing.T) {
	values := map[string]string{"env:K": "0123456789abcdef", "env:SHORT": "short", "env:S": "secret"}
	resolve := func(ref string) (string, error) {
		if v, ok := values[ref]; ok {
			return v, nil
		}
		return "", errors.New("environment variable " + strings.TrimPrefix(ref, "env:") + " is not set")
	}
	_, err := mobile.New(mobile.Config{Apps: []mobile.App{
		{Name: "shop", Key: "env:K", ClientID: "shop", ClientSecret: "env:S"},
		{Name: "shop-2019", Key: "env:K", ClientID: "shop", ClientSecret: "env:S", Disabled: true},
		{Name: "short", Key: "env:SHORT", ClientID: "c", ClientSecret: "env:S"},
		{Name: "nosecret", Key: "env:UNSET", ClientID: "c", ClientSecret: "env:S"},
		{Name: "noclient", Key: "env:K3", ClientID: "", ClientSecret: "env:S"},
	}}, resolve, "", nil)
	values["env:K3"] = "fedcba9876543210"
	for _, want := range []string{
		`mobile app "shop-2019": key: the same key as app "shop"`,
		`mobile app "short": key: must resolve to at least 16 characters`,
		`mobile app "nosecret": key: environment variable UNSET is not set`,
		`mobile app "noclient": key: environment variable K3 is not set`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "<nil>") {
		t.Errorf("a Go nil in %v", err)
	}
	_, err = mobile.New(mobile.Config{Apps: []mobile.App{{Name: "noclient", Key: "env:K3", ClientSecret: "env:S"}}}, resolve, "", nil)
	if err == nil || err.Error() != `mobile app "noclient": client_id and client_secret are required` {
		t.Errorf("no client_id: %v", err)
	}
}
