package config

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Bounds on the files setgate reads at start and on every reload
// (README "Trust boundaries").
const (
	MaxIssuersFileBytes = 1 << 20  // the issuers file
	MaxSecretFileBytes  = 64 << 10 // a secret: token, client secret, key
	MaxCertFileBytes    = 1 << 20  // a certificate or CA bundle
)

// ReadSecretFile reads a secret file: a regular file of at most
// [MaxSecretFileBytes].
func ReadSecretFile(path string) ([]byte, error) {
	return ReadFile(path, MaxSecretFileBytes)
}

// ReadFile reads path, which must be a regular file of at most
// limit bytes. A FIFO, socket or device is refused without blocking: it is
// checked with stat before it is opened, opened with O_NONBLOCK (should it
// have been swapped in meanwhile) and checked again on the open file. The
// error names the file, never its content.
func ReadFile(path string, limit int64) ([]byte, error) {
	if err := checkRegular(path, os.Stat); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := checkRegular(path, func(string) (os.FileInfo, error) { return f.Stat() }); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %s", path, sizeText(limit))
	}
	return b, nil
}

// checkRegular stats path and refuses anything but a regular file no
// larger than what the caller then reads (the size is checked again while
// reading, since a file can grow).
func checkRegular(path string, stat func(string) (os.FileInfo, error)) error {
	fi, err := stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file (%s)", path, fileKind(fi.Mode()))
	}
	return nil
}

// fileKind names a non-regular file mode for an error message.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	default:
		return m.Type().String()
	}
}

// sizeText writes n as KiB or MiB when it is a whole number of them.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
