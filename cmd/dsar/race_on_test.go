//go:build race

package main

// raceDetector says the tests run under the race detector (go test -race).
const raceDetector = true
