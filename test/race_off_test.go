//go:build !race

package test

// raceEnabled: the tests run without -race, and so does the binary.
const raceEnabled = false
