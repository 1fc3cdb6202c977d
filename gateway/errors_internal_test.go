package gateway

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/setgate/setgate/verify"
)

// TestWriteErrorBody: the error body is what json.NewEncoder(w).Encode
// wrote for errorBody, byte for byte, with and without a code and for
// descriptions that need escaping.
func TestWriteErrorBody(t *testing.T) {
	tests := []struct {
		name string
		code verify.Code
		desc string
	}{
		{"plain", verify.CodeInvalidRequest, "Only POST is allowed here."},
		{"no code", "", "Internal error; retry later."},
		{"quotes and backslash", verify.CodeInvalidKey, `key "k1" \ missing`},
		{"control characters", verify.CodeInvalidRequest, "a\x00b\x1fc\td\ne\rf\bg\fh"},
		{"html", verify.CodeInvalidAudience, "<script>&</script>"},
		{"line separators", verify.CodeInvalidRequest, "a\u2028b\u2029c"},
		{"invalid utf-8", verify.CodeInvalidRequest, "a\xffb\xc3"},
		{"non-ascii", verify.CodeInvalidRequest, "Zeitüberschreitung – 時間"},
		{"empty", "", ""},
		{"code needing escape", verify.Code(`a"b`), "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrorBody(t, tt.code, tt.desc)
		})
	}
}

// FuzzWriteErrorBody: any code and description give json's bytes.
func FuzzWriteErrorBody(f *testing.F) {
	f.Add("invalid_request", "The SET is larger than this receiver accepts.")
	f.Add("", "<\u2028\xff\x00\"\\")
	f.Fuzz(func(t *testing.T, code, desc string) {
		checkErrorBody(t, verify.Code(code), desc)
	})
}

func checkErrorBody(t *testing.T, code verify.Code, desc string) {
	t.Helper()
	var want, got bytes.Buffer
	if err := json.NewEncoder(&want).Encode(errorBody{Err: code, Description: desc}); err != nil {
		t.Fatal(err)
	}
	// A strings.Builder has WriteString, as net/http's response has.
	var sb strings.Builder
	writeErrorBody(&sb, code, desc)
	got.WriteString(sb.String())
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("want %q, got %q", want.Bytes(), got.Bytes())
	}
}
