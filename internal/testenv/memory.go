package testenv

import (
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
)

// SettleRSS collects garbage, returns freed memory to the system, resets
// the peak RSS (VmHWM) of this process and of each process in others (by
// pid), and returns this process's RSS in KiB: the idle figure a phase's
// peak is then read against (ProcKiB("self", "VmHWM")). Linux only.
func SettleRSS(t testing.TB, others ...int) int64 {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	pids := []string{"self"}
	for _, pid := range others {
		pids = append(pids, strconv.Itoa(pid))
	}
	for _, pid := range pids {
		if err := os.WriteFile("/proc/"+pid+"/clear_refs", []byte("5"), 0); err != nil {
			t.Fatalf("reset the peak RSS of %s: %v", pid, err)
		}
	}
	return ProcKiB(t, "self", "VmRSS")
}

var procField = regexp.MustCompile(`(?m)^(\w+):\s+(\d+) kB$`)

// ProcKiB returns a memory field (VmRSS, VmHWM...) of /proc/<pid>/status
// in KiB; pid is a number or "self".
func ProcKiB(t testing.TB, pid, field string) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatalf("read memory figures: %v", err)
	}
	for _, m := range procField.FindAllStringSubmatch(string(data), -1) {
		if m[1] == field {
			v, _ := strconv.ParseInt(m[2], 10, 64)
			return v
		}
	}
	t.Fatalf("no %s in /proc/%s/status", field, pid)
	return 0
}
