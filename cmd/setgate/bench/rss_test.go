package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseRSS(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr string
	}{
		{"exposition", "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 1.00028416e+08\n", 100028416, ""},
		{"with timestamp", "process_resident_memory_bytes 4096 1700000000000\n", 4096, ""},
		{"other metrics first", "process_resident_memory_bytes_total 1\ngo_goroutines 9\nprocess_resident_memory_bytes 2048\n", 2048, ""},
		{"absent", "go_goroutines 9\n", 0, "no process_resident_memory_bytes"},
		{"empty", "", 0, "no process_resident_memory_bytes"},
		{"not a number", "process_resident_memory_bytes lots\n", 0, "is not a size"},
		{"negative", "process_resident_memory_bytes -1\n", 0, "is not a size"},
		{"no value", "process_resident_memory_bytes \n", 0, "is not a size"},
		{"NaN", "process_resident_memory_bytes NaN\n", 0, "is not a size"},
		{"infinite", "process_resident_memory_bytes +Inf\n", 0, "is not a size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRSS(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want an error containing %q, got %v (%d)", tt.wantErr, err, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("want %d, got %d, %v", tt.want, got, err)
			}
		})
	}
}

func FuzzParseRSS(f *testing.F) {
	for _, seed := range []string{"process_resident_memory_bytes 1e8\n", "process_resident_memory_bytes NaN\n", "process_resident_memory_bytes +Inf\n", "", "process_resident_memory_bytes"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if v, err := parseRSS(strings.NewReader(in)); err == nil && v < 0 {
			t.Fatalf("want a size ≥ 0, got %d from %q", v, in)
		}
	})
}

// TestRSSSamplerErrors: a reading that fails is reported with its cause.
func TestRSSSamplerErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	s := StartRSSSampler(t.Context(), srv.Client(), srv.URL+"/metrics", 1<<40)
	rep := s.Stop(context.Background())
	// The first reading; the last one is skipped when it would come
	// within a second of the first.
	if len(rep.Samples) == 0 {
		t.Fatalf("want the first reading, got %+v", rep.Samples)
	}
	for _, x := range rep.Samples {
		if x.RSSMB != 0 || !strings.Contains(x.Error, "503") {
			t.Errorf("want a failed reading naming the status, got %+v", x)
		}
	}
	if rep.MaxMB != 0 {
		t.Errorf("want max 0, got %v", rep.MaxMB)
	}
}
