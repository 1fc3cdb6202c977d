package main

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/setgate/setgate/config"
)

// goodIssuer is one valid entry of the issuers file, its push token in
// /secrets/acme (the same entry as config's tests use).
const goodIssuer = `
  - name: acme
    issuer: https://idp.acme.example/
    audience: https://setgate.example/
    jwks_uri: https://idp.acme.example/jwks
    algorithms: [ES256]
    push:
      bearer_token_file: /secrets/acme
`

func TestHelpListsEveryVariable(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"demo", "-h"}} {
		var out bytes.Buffer
		_ = run(context.Background(), args, nil, &out, &out)
		typ := reflect.TypeOf(config.Settings{})
		for i := range typ.NumField() {
			f := typ.Field(i)
			name := config.EnvPrefix + f.Tag.Get("env")
			if !strings.Contains(out.String(), name) {
				t.Errorf("%v: help does not list %s", args, name)
			}
			if def := f.Tag.Get("envDefault"); def != "" && !strings.Contains(out.String(), def) {
				t.Errorf("%v: help does not show default %q of %s", args, def, name)
			}
		}
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, nil, &out, &out); err != nil || !strings.Contains(out.String(), "setgate") {
		t.Fatalf("version: err=%v out=%q", err, out.String())
	}
	if err := run(context.Background(), []string{"bogus"}, nil, &out, &out); err == nil {
		t.Fatal("want error for unknown command")
	}
}

func TestStreamMaxBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"", 0},
		{"0", 0},
		{"-1", -1},
		{"-5", -1},
		{"65536", 65536},
		{"800Mi", 800 << 20},
		{"1Gi", 1 << 30},
		{"1G", 1_000_000_000},
		{"512k", 512_000},
		{"2Ti", 2 << 40},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			vars := map[string]string{}
			if tt.in != "" {
				vars["SETGATE_STREAM_MAX_BYTES"] = tt.in
			}
			s, err := config.Load(vars)
			if err != nil {
				t.Fatal(err)
			}
			if int64(s.StreamMaxBytes) != tt.want || s.StreamDiscard != "new" {
				t.Fatalf("want %d bytes, discard new; got %d, %q", tt.want, s.StreamMaxBytes, s.StreamDiscard)
			}
			if got, err := bridgeConfig(s); err != nil || got.StreamMaxBytes != tt.want || got.StreamDiscard != "new" {
				t.Fatalf("bridge config: want %d, new; got %d, %q (%v)", tt.want, got.StreamMaxBytes, got.StreamDiscard, err)
			}
		})
	}
}
