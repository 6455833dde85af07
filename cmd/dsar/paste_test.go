package main

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/testenv"
)

// pastePrelude runs pasted commands strictly: the first that fails stops
// the script and is named, and curl counts an HTTP error as a failure
// (--fail-with-body), except where a command already says -sf.
const pastePrelude = `set -euo pipefail
trap 'echo "FAILED: $BASH_COMMAND" >&2' ERR
curl() { case " $* " in *" -sf "*) command curl "$@" ;; *) command curl --fail-with-body "$@" ;; esac; }
`

// paste runs script with bash in dir, as if pasted, and fails the test when
// any of its commands fails.
func paste(t *testing.T, dir, script string, env ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute) // a loaded machine: the workers are slow
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", pastePrelude+script)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pasted commands failed: %v\n--- script\n%s\n--- output\n%s", err, script, out)
	}
	return string(out)
}

// TestPastedCommands pastes, into bash, every command `dsar dev --demo`
// prints and the curl examples of README.md, against the running server:
// each must work as printed (no placeholder to fill in, no race with the
// workers).
func TestPastedCommands(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	r := testenv.RedisServer(t)
	dataDir := t.TempDir()
	p := startDSAR(t, baseEnv(t, dataDir, r.Addr, testenv.Queue(t, r), testenv.Name("e2e")), "dev", "--demo")

	t.Run("demo", func(t *testing.T) {
		// The commands follow the line startDSAR waits for.
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.stdout.String(), "saved export.zip") && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		_, demo, ok := strings.Cut(p.stdout.String(), "Try the demo shop")
		if !ok {
			t.Fatalf("no demo commands printed:\n%s", p.stdout)
		}
		var cmds []string
		for _, l := range strings.Split(demo, "\n")[1:] {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				cmds = append(cmds, l)
			}
		}
		if len(cmds) != 6 {
			t.Fatalf("%d commands printed, want 6 (three filings, an approval, a read, an export):\n%s", len(cmds), demo)
		}
		dir := t.TempDir()
		out := paste(t, dir, strings.Join(cmds, "\n")+"\n"+`test -n "$ACCESS" && test -n "$DELETION" && test -n "$OPTOUT" && test -s export.zip`)
		if !strings.Contains(out, `"status":"verified"`) || !strings.Contains(out, "saved export.zip") {
			t.Errorf("the approval or the export did not answer:\n%s", out)
		}
		ids := regexp.MustCompile(`(?m)^DELETION=(\S+)$`).FindStringSubmatch(out)
		if ids == nil {
			t.Fatalf("no deletion id echoed:\n%s", out)
		}
		p.waitCompleted(ids[1])
	})

	t.Run("README", func(t *testing.T) {
		readme, err := os.ReadFile("../../README.md")
		if err != nil {
			t.Fatal(err)
		}
		blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
		ran := 0
		for _, b := range blocks {
			script := b[1]
			if !strings.Contains(script, "curl ") || !strings.Contains(script, "127.0.0.1:8080") {
				continue
			}
			var lines []string
			for _, l := range strings.Split(script, "\n") {
				if strings.HasPrefix(l, "dsar ") {
					continue // dsar's own commands are tested with the binary elsewhere
				}
				lines = append(lines, l)
			}
			script = strings.NewReplacer("http://127.0.0.1:8080", p.base, "./data/", dataDir+"/").Replace(strings.Join(lines, "\n"))
			paste(t, t.TempDir(), script, "KEY="+apiKey)
			ran++
		}
		if ran < 3 {
			t.Errorf("ran %d README blocks with curl, want at least 3 (the API, the portal, the reports)", ran)
		}
	})
}
