//go:build !race

package notify

// raceEnabled: see race_on_test.go.
const raceEnabled = false
