package bench

import "fmt"

// Arena holds pre-signed SETs outside the Go heap (anonymous memory on
// Unix), so that a large pool neither raises the garbage collector's heap
// goal nor, through it, the resident set being measured: the pool's own
// pages show in the RSS once, as [Arena.Size] bytes.
type Arena struct {
	buf  []byte
	used int
}

// NewArena packs bodies into one arena and returns it with the copies, in
// order. Close it only when nothing reads the copies any more.
func NewArena(bodies [][]byte) (*Arena, [][]byte, error) {
	size := 0
	for _, b := range bodies {
		size += len(b)
	}
	buf, err := mapAnon(max(size, 1))
	if err != nil {
		return nil, nil, fmt.Errorf("bench: arena of %d bytes: %w", size, err)
	}
	a := &Arena{buf: buf}
	out := make([][]byte, len(bodies))
	for i, b := range bodies {
		out[i] = a.buf[a.used : a.used+len(b) : a.used+len(b)]
		a.used += copy(out[i], b)
	}
	return a, out, nil
}

// Size is the number of bytes the SETs take.
func (a *Arena) Size() int64 { return int64(a.used) }

// Close releases the memory; the copies must not be used afterwards.
func (a *Arena) Close() error {
	if a.buf == nil {
		return nil
	}
	buf := a.buf
	a.buf = nil
	return unmapAnon(buf)
}
