package chart_test

import (
	"strings"
	"testing"

	"github.com/setgate/setgate/config"
)

// TestNATSLoginValues: nats.user with nats.password, or nats.token, become
// SETGATE_NATS_USER and SETGATE_NATS_PASSWORD_FILE or SETGATE_NATS_TOKEN_FILE,
// the files mounted from the Secret named or from the chart's own, like
// nats.creds and nats.nkey; the rendered environment passes setgate's own
// checks (config.Load) and no secret is in it.
func TestNATSLoginValues(t *testing.T) {
	const secret = "s3cr3t-nats-password"
	external := []string{"ci/external-nats-values.yaml"}
	noCreds := []string{"nats.creds.existingSecret="}
	tests := []struct {
		name    string
		set     []string
		wantEnv map[string]string // "" = must be unset
		wantSrc map[string]string // variable -> file source
	}{
		{
			name: "user and password inline",
			set:  append(noCreds, "nats.user=svc", "nats.password.value="+secret),
			wantEnv: map[string]string{"SETGATE_NATS_USER": "svc", "SETGATE_NATS_PASSWORD_FILE": "/etc/setgate/nats/nats.password",
				"SETGATE_NATS_CREDS_FILE": "", "SETGATE_NATS_TOKEN_FILE": ""},
			wantSrc: map[string]string{"SETGATE_NATS_PASSWORD_FILE": "secret/sg-setgate-nats/nats.password"},
		},
		{
			name:    "user and password from a Secret",
			set:     append(noCreds, "nats.user=svc", "nats.password.existingSecret=setgate-nats-login", "nats.password.key=pw"),
			wantEnv: map[string]string{"SETGATE_NATS_USER": "svc", "SETGATE_NATS_PASSWORD_FILE": "/etc/setgate/nats/nats.password"},
			wantSrc: map[string]string{"SETGATE_NATS_PASSWORD_FILE": "secret/setgate-nats-login/pw"},
		},
		{
			name:    "token inline",
			set:     append(noCreds, "nats.token.value="+secret),
			wantEnv: map[string]string{"SETGATE_NATS_TOKEN_FILE": "/etc/setgate/nats/nats.token", "SETGATE_NATS_USER": "", "SETGATE_NATS_PASSWORD_FILE": ""},
			wantSrc: map[string]string{"SETGATE_NATS_TOKEN_FILE": "secret/sg-setgate-nats/nats.token"},
		},
		{
			name:    "token from a Secret",
			set:     append(noCreds, "nats.token.existingSecret=setgate-nats-token"),
			wantEnv: map[string]string{"SETGATE_NATS_TOKEN_FILE": "/etc/setgate/nats/nats.token"},
			wantSrc: map[string]string{"SETGATE_NATS_TOKEN_FILE": "secret/setgate-nats-token/nats.token"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRender(t, valueSet{files: external, set: tt.set})
			env := r.env(t)
			for k, want := range tt.wantEnv {
				got, ok := env[k]
				if want == "" && ok {
					t.Errorf("%s: want unset, got %q", k, got)
				} else if want != "" && got != want {
					t.Errorf("%s: want %q, got %q", k, want, got)
				}
			}
			for k, want := range tt.wantSrc {
				if src, err := r.fileSource(t, env[k]); err != nil || src != want {
					t.Errorf("%s: want it from %s, got %q, %v", k, want, src, err)
				}
			}
			for k, v := range env {
				if strings.Contains(v, secret) {
					t.Errorf("%s holds the secret", k)
				}
			}
			if s, ok := r.secrets[fullname+"-nats"]; ok {
				for _, key := range []string{"nats.password", "nats.token"} {
					if v, ok := s.Data[key]; ok && string(v) != secret {
						t.Errorf("Secret %s-nats %s: want the inline value", fullname, key)
					}
				}
			}
			if _, err := config.Load(env); err != nil {
				t.Errorf("the rendered environment fails setgate's checks: %v", err)
			}
		})
	}

	t.Run("password rotated rolls the pods", func(t *testing.T) {
		a := mustRender(t, valueSet{files: external, set: []string{"nats.creds.existingSecret=", "nats.user=svc", "nats.password.value=one-password"}})
		b := mustRender(t, valueSet{files: external, set: []string{"nats.creds.existingSecret=", "nats.user=svc", "nats.password.value=two-password"}})
		ca, cb := a.deployment.Spec.Template.Annotations["checksum/secrets"], b.deployment.Spec.Template.Annotations["checksum/secrets"]
		if ca == "" || ca == cb {
			t.Errorf("checksum/secrets: want it to change, got %q -> %q", ca, cb)
		}
	})
}

// TestNATSLoginRejected: the chart refuses credentials in nats.url, a user
// without a password and the other way round, and two kinds of NATS login
// at once, with a message that names the values and never a secret.
func TestNATSLoginRejected(t *testing.T) {
	const secret = "s3cr3t-nats-password"
	external := []string{"ci/external-nats-values.yaml"}
	tests := []struct {
		name    string
		set     []string
		wantErr string
	}{
		{"user and password in the URL", []string{"nats.creds.existingSecret=", "nats.url=nats://svc:" + secret + "@nats.nats.svc:4222"},
			"nats.url has a user part (user:password@ or token@), which setgate refuses"},
		{"token in the second URL", []string{"nats.creds.existingSecret=", "nats.url=nats://a:4222\\,nats://" + secret + "@b:4222"},
			"Remove it and set nats.user with nats.password (existingSecret or value), or nats.token"},
		{"user without password", []string{"nats.creds.existingSecret=", "nats.user=svc"},
			"nats.user needs nats.password (existingSecret or value)"},
		{"password without user", []string{"nats.creds.existingSecret=", "nats.password.value=" + secret},
			"nats.password needs nats.user"},
		{"creds and token", []string{"nats.token.value=" + secret},
			"nats.creds and nats.token: set one NATS login, not two kinds at once"},
		{"user and token", []string{"nats.creds.existingSecret=", "nats.user=svc", "nats.password.existingSecret=s", "nats.token.existingSecret=t"},
			"nats.user with nats.password and nats.token: set one NATS login, not two kinds at once"},
		{"creds and nkey", []string{"nats.nkey.value=SUAEXAMPLE"},
			"nats.creds and nats.nkey: set one NATS login, not two kinds at once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := render(t, valueSet{files: external, set: tt.set})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("want an error containing %q, got %v", tt.wantErr, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error holds the secret: %v", err)
			}
		})
	}
}
