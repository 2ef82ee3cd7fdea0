// Package storetest holds what livegrid's object-store tests share: a real
// MinIO server started on loopback, the conformance table every backend
// must pass, and a fake store made of function fields.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// MinIO credentials the test server runs with.
const (
	MinIOUser     = "livegrid"
	MinIOPassword = "livegrid-secret"
)

// MinIO is a MinIO server for one test, on loopback ports of its own. Kill
// and Start simulate an outage; the data folder survives them.
type MinIO struct {
	bin, dir, logPath string
	addr, console     string

	cmd    *exec.Cmd
	exited chan struct{}
}

// StartMinIO starts a MinIO server in a temporary folder and stops it when
// the test ends. The binary is found with MinIOBinary; the test is skipped
// when there is none, outside CI.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin := MinIOBinary(t)
	m := &MinIO{bin: bin, dir: t.TempDir(), logPath: filepath.Join(t.TempDir(), "minio.log")}
	t.Cleanup(func() {
		m.stop(t, syscall.SIGTERM)
		if t.Failed() {
			t.Logf("minio log (tail):\n%s", tail(m.logPath, 4096))
		}
	})
	var err error
	for range 3 { // a port picked may be taken by the time MinIO binds it
		if m.addr, err = freeAddr(); err != nil {
			break
		}
		if m.console, err = freeAddr(); err != nil {
			break
		}
		if err = m.start(); err == nil {
			return m
		}
	}
	t.Fatalf("storetest: start minio: %v\nlog:\n%s", err, tail(m.logPath, 4096))
	return nil
}

// Endpoint is the server's S3 address as an http:// URL.
func (m *MinIO) Endpoint() string { return "http://" + m.addr }

// Addr is the server's host:port.
func (m *MinIO) Addr() string { return m.addr }

// URL is a store URL for bucket on this server; query adds more keys
// ("prefix=x").
func (m *MinIO) URL(bucket string, query ...string) string {
	u := "s3://" + bucket + "?endpoint=" + m.Endpoint()
	for _, q := range query {
		u += "&" + q
	}
	return u
}

// Getenv serves the server's credentials as AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, for store.Options.Getenv.
func (m *MinIO) Getenv(name string) string {
	switch name {
	case "AWS_ACCESS_KEY_ID":
		return MinIOUser
	case "AWS_SECRET_ACCESS_KEY":
		return MinIOPassword
	}
	return ""
}

// Kill stops the server at once, as a crash would.
func (m *MinIO) Kill(t testing.TB) {
	t.Helper()
	m.stop(t, syscall.SIGKILL)
}

// Start starts a killed server again on the same ports and folder and
// waits until it is live.
func (m *MinIO) Start(t testing.TB) {
	t.Helper()
	if m.cmd != nil {
		t.Fatalf("storetest: minio is already running")
	}
	var err error
	for range 50 { // the old process's ports may take a moment to free
		if err = m.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("storetest: restart minio: %v\nlog:\n%s", err, tail(m.logPath, 4096))
}

func (m *MinIO) start() error {
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(m.bin, "server", m.dir, "--address", m.addr, "--console-address", m.console, "--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+MinIOUser,
		"MINIO_ROOT_PASSWORD="+MinIOPassword,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", m.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	m.cmd, m.exited = cmd, exited
	if err := m.waitLive(30 * time.Second); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		m.cmd, m.exited = nil, nil
		return err
	}
	return nil
}

// waitLive polls /minio/health/live until it answers 200 without the
// "x-minio-server-status: offline" header MinIO sends while its object
// layer is still starting (S3 calls then fail with "Server not
// initialized yet").
func (m *MinIO) waitLive(limit time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-m.exited:
			return errors.New("minio exited before it was live")
		default:
		}
		resp, err := client.Get(m.Endpoint() + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && resp.Header.Get("X-Minio-Server-Status") != "offline" {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("minio at %s not live after %v", m.addr, limit)
}

func (m *MinIO) stop(t testing.TB, sig syscall.Signal) {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(sig)
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		t.Logf("storetest: minio did not stop on %v; killing it", sig)
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
	m.cmd, m.exited = nil, nil
}

// MinIOBinary returns the MinIO server binary: $LIVEGRID_MINIO, else the
// one deploy/minio.sh caches under ${LIVEGRID_CACHE:-$HOME/.cache/livegrid},
// else minio on PATH. When there is none it runs deploy/minio.sh in CI
// (CI=true) and skips the test elsewhere.
func MinIOBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("LIVEGRID_MINIO"); p != "" {
		return p
	}
	cache := os.Getenv("LIVEGRID_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "livegrid")
	}
	cached := filepath.Join(cache, "bin", "minio")
	if fi, err := os.Stat(cached); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return cached
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	if os.Getenv("CI") != "true" {
		t.Skipf("MinIO server not found at %s or on PATH; run deploy/minio.sh (about 6 minutes, once) to run this test", cached)
	}
	script, err := findScript()
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("storetest: %s: %v\n%s", script, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// findScript finds deploy/minio.sh above the test's folder.
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "deploy", "minio.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("deploy/minio.sh not found above the working folder")
		}
		dir = parent
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func tail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}
