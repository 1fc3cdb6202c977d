package main

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadSettingsDefaults(t *testing.T) {
	s, err := loadSettings(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if s.HTTPAddr != ":8080" || s.AdminAddr != ":9090" || s.Stream != "SECEVENTS" || s.SubjectPrefix != "secevent" ||
		!s.StreamManage || s.StreamReplicas != 1 || s.StreamMaxAge != 168*time.Hour || s.DuplicateWindow != time.Hour ||
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
			s, err := loadSettings(tt.vars)
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
			_, err := loadSettings(tt.vars)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want error naming %s, got %v", tt.want, err)
			}
		})
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"demo", "-h"}} {
		var out bytes.Buffer
		_ = run(context.Background(), args, nil, &out, &out)
		typ := reflect.TypeOf(settings{})
		for i := range typ.NumField() {
			f := typ.Field(i)
			name := envPrefix + f.Tag.Get("env")
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
			s, err := loadSettings(vars)
			if err != nil {
				t.Fatal(err)
			}
			if int64(s.StreamMaxBytes) != tt.want || s.StreamDiscard != "new" {
				t.Fatalf("want %d bytes, discard new; got %d, %q", tt.want, s.StreamMaxBytes, s.StreamDiscard)
			}
			if got := bridgeConfig(s); got.StreamMaxBytes != tt.want || got.StreamDiscard != "new" {
				t.Fatalf("bridge config: want %d, new; got %d, %q", tt.want, got.StreamMaxBytes, got.StreamDiscard)
			}
		})
	}
}
