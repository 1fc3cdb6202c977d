package gateway

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReadBody: whatever length was declared, readBody returns what
// io.ReadAll would, and passes read errors on.
func TestReadBody(t *testing.T) {
	body := strings.Repeat("eyJhbGciOiJFUzI1NiJ9.", 40)
	tests := []struct {
		name     string
		declared int64
		reader   func() io.Reader
	}{
		{"declared exactly", int64(len(body)), func() io.Reader { return strings.NewReader(body) }},
		{"not declared", -1, func() io.Reader { return strings.NewReader(body) }},
		{"declared shorter", 10, func() io.Reader { return strings.NewReader(body) }},
		{"declared longer", int64(len(body)) * 2, func() io.Reader { return strings.NewReader(body) }},
		{"one byte at a time", int64(len(body)), func() io.Reader { return iotest.OneByteReader(strings.NewReader(body)) }},
		{"data with EOF", int64(len(body)), func() io.Reader { return iotest.DataErrReader(strings.NewReader(body)) }},
		{"empty", 0, func() io.Reader { return strings.NewReader("") }},
		{"empty, declared", 5, func() io.Reader { return strings.NewReader("") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := io.ReadAll(tt.reader())
			if err != nil {
				t.Fatal(err)
			}
			got, err := readBody(tt.reader(), tt.declared, nil)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("want the %d bytes io.ReadAll reads, got %d (%v)", len(want), len(got), err)
			}
		})
	}
	boom := errors.New("boom")
	if _, err := readBody(iotest.ErrReader(boom), 100, nil); !errors.Is(err, boom) {
		t.Errorf("want the read error, got %v", err)
	}
}

func TestIsSETMediaType(t *testing.T) {
	tests := []struct {
		ct   string
		want bool
	}{
		{"application/secevent+jwt", true},
		{"application/jwt", true},
		{"Application/SecEvent+JWT", true},
		{"application/secevent+jwt; charset=utf-8", true},
		{"application/json", false},
		{"", false},
		{"application/secevent+jwt;;", false},
	}
	for _, tt := range tests {
		if got := isSETMediaType(tt.ct); got != tt.want {
			t.Errorf("%q: want %v, got %v", tt.ct, tt.want, got)
		}
	}
}
