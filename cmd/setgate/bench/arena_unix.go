//go:build unix

package bench

import "syscall"

// mapAnon returns n bytes of private anonymous memory.
func mapAnon(n int) ([]byte, error) {
	return syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
}

// unmapAnon releases memory from mapAnon.
func unmapAnon(b []byte) error { return syscall.Munmap(b) }
