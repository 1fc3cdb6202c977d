package chart_test

import (
	"os"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/setgate/setgate/config"
)

// TestStreamDefaultsMatchBinary: the chart's stream defaults are the
// binary's, so "every default" means the same with and without the chart;
// above all the duplicate window, which sizes the embedded server's memory
// (README "Memory") and decides which retries are caught (README
// "Guarantees").
func TestStreamDefaultsMatchBinary(t *testing.T) {
	data, err := os.ReadFile("values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Stream struct {
			Name            string `yaml:"name"`
			SubjectPrefix   string `yaml:"subjectPrefix"`
			MaxAge          string `yaml:"maxAge"`
			DuplicateWindow string `yaml:"duplicateWindow"`
		} `yaml:"stream"`
	}
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	def := config.DefaultSettings()
	duration := func(s string) time.Duration {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Errorf("values.yaml: %q is not a Go duration: %v", s, err)
		}
		return d
	}
	tests := []struct {
		name        string
		chart, want any
	}{
		{"stream.duplicateWindow = SETGATE_DUPLICATE_WINDOW", duration(v.Stream.DuplicateWindow), def.DuplicateWindow},
		{"stream.maxAge = SETGATE_STREAM_MAX_AGE", duration(v.Stream.MaxAge), def.StreamMaxAge},
		{"stream.name = SETGATE_STREAM", v.Stream.Name, def.Stream},
		{"stream.subjectPrefix = SETGATE_SUBJECT_PREFIX", v.Stream.SubjectPrefix, def.SubjectPrefix},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.chart != tt.want {
				t.Errorf("want the binary's default %v, got %v in values.yaml", tt.want, tt.chart)
			}
		})
	}
}
