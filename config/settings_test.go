package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadSettingsDefaults(t *testing.T) {
	s, err := Load(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if s.HTTPAddr != ":8080" || s.AdminAddr != ":9090" || s.Stream != "SECEVENTS" || s.SubjectPrefix != "secevent" ||
		!s.StreamManage || s.StreamReplicas != 1 || s.StreamMaxAge != 168*time.Hour || s.DuplicateWindow != 90*time.Second ||
		s.MaxBodyBytes != 65536 || s.LogLevel != "info" || s.LogFormat != "json" || s.ShutdownTimeout != 20*time.Second ||
		s.EmbeddedNATSAddr != "127.0.0.1:4222" || s.DataDir != "./data" || s.EmbeddedSync != "always" || s.EmbeddedNATSPass != "" {
		t.Fatalf("defaults differ from the README's Environment table: %+v", s)
	}
}

func TestLoadSettingsEmbeddedListener(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want string
	}{
		{"unset", map[string]string{}, "127.0.0.1:4222"},
		{"empty: no listener", map[string]string{"SETGATE_EMBEDDED_NATS_ADDR": ""}, ""},
		{"set", map[string]string{"SETGATE_EMBEDDED_NATS_ADDR": "0.0.0.0:4222"}, "0.0.0.0:4222"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load(tt.vars)
			if err != nil || s.EmbeddedNATSAddr != tt.want {
				t.Fatalf("want %q, got %q (%v)", tt.want, s.EmbeddedNATSAddr, err)
			}
		})
	}
}

func TestLoadSettingsErrors(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want string
	}{
		{"bad duration", map[string]string{"SETGATE_SHUTDOWN_TIMEOUT": "soon"}, "SETGATE_SHUTDOWN_TIMEOUT"},
		{"bad bool", map[string]string{"SETGATE_STREAM_MANAGE": "maybe"}, "SETGATE_STREAM_MANAGE"},
		{"bad level", map[string]string{"SETGATE_LOG_LEVEL": "loud"}, "SETGATE_LOG_LEVEL"},
		{"bad format", map[string]string{"SETGATE_LOG_FORMAT": "xml"}, "SETGATE_LOG_FORMAT"},
		{"bad body", map[string]string{"SETGATE_MAX_BODY_BYTES": "0"}, "SETGATE_MAX_BODY_BYTES"},
		{"bad connection cap", map[string]string{"SETGATE_MAX_CONNECTIONS": "0"}, "SETGATE_MAX_CONNECTIONS"},
		{"bad replicas", map[string]string{"SETGATE_STREAM_REPLICAS": "7"}, "SETGATE_STREAM_REPLICAS"},
		{"tls half", map[string]string{"SETGATE_TLS_CERT_FILE": "/c.pem"}, "SETGATE_TLS_KEY_FILE"},
		{"client ca alone", map[string]string{"SETGATE_TLS_CLIENT_CA_FILE": "/ca.pem"}, "SETGATE_TLS_CLIENT_CA_FILE"},
		{"bad max bytes", map[string]string{"SETGATE_STREAM_MAX_BYTES": "1GB"}, "SETGATE_STREAM_MAX_BYTES"},
		{"max bytes overflow", map[string]string{"SETGATE_STREAM_MAX_BYTES": "9999999999Ti"}, "SETGATE_STREAM_MAX_BYTES"},
		{"bad discard", map[string]string{"SETGATE_STREAM_DISCARD": "oldest"}, "SETGATE_STREAM_DISCARD"},
		{"bad sync", map[string]string{"SETGATE_EMBEDDED_SYNC": "sometimes"}, "SETGATE_EMBEDDED_SYNC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.vars)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want error naming %s, got %v", tt.want, err)
			}
		})
	}
}

// TestDefaultSettingsMatchTags: DefaultSettings holds, field by field,
// what the envDefault tags give an empty environment (and the zero value
// where a field has no default), and it is valid as it is.
func TestDefaultSettingsMatchTags(t *testing.T) {
	def := DefaultSettings()
	if err := def.Validate(); err != nil {
		t.Fatalf("DefaultSettings is not valid: %v", err)
	}
	fromTags, err := Load(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	got, want := reflect.ValueOf(def), reflect.ValueOf(fromTags)
	typ := got.Type()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Tag.Get("env") == "" {
			t.Errorf("field %s has no env tag", f.Name)
		}
		if g, w := got.Field(i).Interface(), want.Field(i).Interface(); !reflect.DeepEqual(g, w) {
			t.Errorf("%s%s: DefaultSettings has %v, envDefault:%q gives %v", EnvPrefix, f.Tag.Get("env"), g, f.Tag.Get("envDefault"), w)
		}
	}
}

// TestValidateNamesVariable: Validate refuses a settings value built in
// code the way Load refuses the environment, with the same message.
func TestValidateNamesVariable(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Settings)
		want   string
	}{
		{"log level", func(s *Settings) { s.LogLevel = "loud" }, `environment: SETGATE_LOG_LEVEL="loud": want debug, info, warn or error`},
		{"body", func(s *Settings) { s.MaxBodyBytes = 0 }, "environment: SETGATE_MAX_BODY_BYTES must be positive"},
		{"tls half", func(s *Settings) { s.TLSKeyFile = "/k.pem" }, "environment: SETGATE_TLS_CERT_FILE and SETGATE_TLS_KEY_FILE go together"},
		{"lease", func(s *Settings) { s.PollLeaseTTL = time.Millisecond }, "environment: SETGATE_POLL_LEASE_TTL must be at least 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := DefaultSettings()
			tt.change(&s)
			if err := s.Validate(); err == nil || err.Error() != tt.want {
				t.Fatalf("want %q, got %v", tt.want, err)
			}
		})
	}
}
