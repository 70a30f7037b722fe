package testcluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is a component started by this program.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed when the process has exited and was reaped
	waitErr error         // set before exited is closed
}

// startProcess starts bin with args in its own session (so that it outlives
// this program and a terminal's Ctrl-C), writes its output to <dir>/<name>.log
// and its process id to <dir>/<name>.pid.
func startProcess(dir, name, bin string, args ...string) (*process, error) {
	return startProcessEnv(dir, name, bin, nil, args...)
}

// startProcessEnv is startProcess with env added to this program's
// environment (a later entry wins).
func startProcessEnv(dir, name, bin string, env []string, args ...string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own copy of the descriptor
	fmt.Fprintf(logFile, "# %s %s\n", bin, strings.Join(args, " "))

	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	if err := os.WriteFile(pidPath(dir, name), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// hasExited reports whether the process has exited, and how.
func (p *process) hasExited() (bool, error) {
	select {
	case <-p.exited:
		if p.waitErr == nil {
			return true, errors.New("exited with status 0")
		}
		return true, p.waitErr
	default:
		return false, nil
	}
}

func pidPath(dir, name string) string { return filepath.Join(dir, name+".pid") }

// readPID returns the process id in <dir>/<name>.pid, or 0 when there is none.
func readPID(dir, name string) (int, error) {
	b, err := os.ReadFile(pidPath(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: not a process id: %q", pidPath(dir, name), b)
	}
	return pid, nil
}

// running reports whether pid is a live (not zombie) process whose command is
// the component name. Checking the command guards against a process id that
// was reused by an unrelated process after the component died.
func running(pid int, name string) bool {
	if pid <= 0 {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name: "pid (comm) S ...".
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	return filepath.Base(string(argv0)) == name
}

// stopPID sends SIGTERM to pid, waits up to grace for it to exit, then sends
// SIGKILL and waits again. It returns whether SIGKILL was needed.
func stopPID(pid int, name string, grace time.Duration) (killed bool, err error) {
	if !running(pid, name) {
		return false, nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return false, fmt.Errorf("SIGTERM %s (pid %d): %w", name, pid, err)
	}
	if waitGone(pid, name, grace) {
		return false, nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return true, fmt.Errorf("SIGKILL %s (pid %d): %w", name, pid, err)
	}
	if !waitGone(pid, name, 10*time.Second) {
		return true, fmt.Errorf("%s (pid %d) still running after SIGKILL", name, pid)
	}
	return true, nil
}

func waitGone(pid int, name string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if !running(pid, name) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Tail returns the last n lines of the file at path, or a note saying why it
// cannot be read.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Detached is a process started with StartDetached.
type Detached struct{ p *process }

// Pid is the process id.
func (d *Detached) Pid() int { return d.p.cmd.Process.Pid }

// LogPath is the file its output goes to.
func (d *Detached) LogPath() string { return d.p.logPath }

// Exited reports whether the process has exited, and how.
func (d *Detached) Exited() (bool, error) { return d.p.hasExited() }

// StartDetached starts bin in its own session, so that it outlives this
// program, with env added to this program's environment. Its output goes
// to <dir>/<name>.log and its process id to <dir>/<name>.pid; name must be
// the binary's base name (StopDetached checks it before signalling).
func StartDetached(dir, name, bin string, env []string, args ...string) (*Detached, error) {
	if filepath.Base(bin) != name {
		return nil, fmt.Errorf("process name %q is not the base name of %s", name, bin)
	}
	p, err := startProcessEnv(dir, name, bin, env, args...)
	if err != nil {
		return nil, err
	}
	return &Detached{p}, nil
}

// RunningPID returns the process id in <dir>/<name>.pid when that process
// still runs name, else 0.
func RunningPID(dir, name string) (int, error) {
	pid, err := readPID(dir, name)
	if err != nil || pid == 0 || !running(pid, name) {
		return 0, err
	}
	return pid, nil
}

// StopDetached stops the process of <dir>/<name>.pid with SIGTERM and,
// after grace, SIGKILL, and removes the PID file. It reports whether a
// process was running.
func StopDetached(dir, name string, grace time.Duration) (bool, error) {
	pid, err := RunningPID(dir, name)
	if err != nil {
		return false, err
	}
	if pid != 0 {
		if _, err := stopPID(pid, name, grace); err != nil {
			return true, err
		}
	}
	if err := os.Remove(pidPath(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return pid != 0, err
	}
	return pid != 0, nil
}
