//go:build race

package notify

// raceEnabled: the race detector slows every goroutine several times over, so throughput
// figures are not asserted under it.
const raceEnabled = true
