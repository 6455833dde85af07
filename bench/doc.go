// Package bench holds dsar's throughput and latency benchmarks of the whole
// service on a store driver: intake against direct inserts into the same
// store, the latency of intake, get and list as the store grows, opt-outs
// end to end through the demo connector against bare asynq tasks and direct
// store writes, and a burst. Each benchmark measures its baseline in the
// same run and reports the ratio. docs/benchmarks.md has the figures and
// the commands that took them.
package bench
