//go:build race

package test

// raceEnabled: the tests run with -race, so the binary is built with it too
// and a data race in setgate fails the test that ran it.
const raceEnabled = true
