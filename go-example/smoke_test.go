package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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

// service is the example binary running as a child process.
type service struct {
	cmd  *exec.Cmd
	base string
	out  *bytes.Buffer
}

func start(t *testing.T, bin, data, config string) *service {
	t.Helper()
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-data", data, "-config", config)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening on ") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("no listening line (%q, %v); logs:\n%s", line, err, logs.String())
	}
	addr := strings.Fields(strings.TrimPrefix(line, "listening on "))[0]
	return &service{cmd: cmd, base: "http://" + addr, out: &logs}
}

func (s *service) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// stop sends SIGTERM and requires a clean exit (status 0) within the cleanup timeout.
func (s *service) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; logs:\n%s", err, s.out.String())
		}
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Fatalf("no exit within 60s of SIGTERM; logs:\n%s", s.out.String())
	}
	if !strings.Contains(s.out.String(), "shut down cleanly") {
		t.Fatalf("logs:\n%s", s.out.String())
	}
}

// refusesWhatItCannotStore: a value over the limit (declared, or sent chunked), a body cut
// short and a key over the limit are refused with a 4xx, and nothing is stored.
func refusesWhatItCannotStore(t *testing.T, s *service) {
	t.Helper()
	const limit = 16 << 20 // the embedded config's max_value_bytes
	big := strings.Repeat("x", limit+1)
	if code, _ := s.do(t, "PUT", "/kv/big", big); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("PUT of %d bytes: %d, want 413", len(big), code)
	}
	// Chunked (no declared length): refused once past the limit.
	req, err := http.NewRequest("PUT", s.base+"/kv/big", io.MultiReader(strings.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked PUT over the limit: %d", resp.StatusCode)
	}
	// Declared 1 MiB, 1000 bytes sent, then the client stops sending: 400 on that connection.
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT /kv/cut HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", 1<<20, strings.Repeat("y", 1000))
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	status, err := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if err != nil || !strings.Contains(status, " 400 ") {
		t.Fatalf("PUT cut short: %q %v", status, err)
	}
	long := "/kv/" + strings.Repeat("k", 1025)
	if code, _ := s.do(t, "PUT", long, "v"); code != http.StatusBadRequest {
		t.Fatalf("PUT with a 1025-byte key: %d", code)
	}
	for _, k := range []string{"/kv/big", "/kv/cut"} {
		if code, _ := s.do(t, "GET", k, ""); code != http.StatusNotFound {
			t.Fatalf("GET %s after a refused PUT: %d (something was stored)", k, code)
		}
	}
	// Exactly the limit is stored whole.
	exact := big[:limit]
	if code, _ := s.do(t, "PUT", "/kv/exact", exact); code != http.StatusNoContent {
		t.Fatalf("PUT of exactly the limit: %d", code)
	}
	if code, body := s.do(t, "GET", "/kv/exact", ""); code != 200 || len(body) != limit {
		t.Fatalf("GET of the limit-sized value: %d, %d bytes", code, len(body))
	}
}

// Put, get, shut down with SIGTERM, restart, get again: the value survived.
func TestSmoke(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "go-example")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = os.Environ()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	// The embedded config, but the monitor samples memory every 50ms (not 10s), so the DB's
	// memory series appear at once.
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte("resource_management:\n  monitor_interval: 50ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	s := start(t, bin, data, config)
	if code, _ := s.do(t, "PUT", "/kv/alice", "admin"); code != http.StatusNoContent {
		t.Fatalf("PUT: %d", code)
	}
	if code, body := s.do(t, "GET", "/kv/alice", ""); code != 200 || body != "admin" {
		t.Fatalf("GET: %d %q", code, body)
	}
	if code, _ := s.do(t, "GET", "/kv/bob", ""); code != http.StatusNotFound {
		t.Fatalf("GET missing: %d", code)
	}
	refusesWhatItCannotStore(t, s)
	code, body := s.do(t, "GET", "/status", "")
	var st struct {
		Resources []struct {
			Name      string   `json:"name"`
			DependsOn []string `json:"depends_on"`
		} `json:"resources"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil {
		t.Fatalf("status: %d %s", code, body)
	}
	names := map[string][]string{}
	for _, r := range st.Resources {
		names[r.Name] = r.DependsOn
	}
	if deps, ok := names["heartbeat-worker"]; !ok || len(deps) != 1 || deps[0] != "kv" {
		t.Fatalf("the worker depends on the DB: %v", names)
	}
	if _, ok := names["resman.monitor"]; !ok {
		t.Fatalf("no monitor resource: %v", names)
	}
	// The DB's memory figures, per DB, from the monitor's sample.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body = s.do(t, "GET", "/metrics", "")
		if code == 200 && strings.Contains(body, `resman_rocksdb_memtable_bytes{db="kv"}`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no memory series for the DB kv (%d):\n%s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{
		"resman_up 1",
		"# TYPE resman_resources_registered_total counter",
		`resman_resources{state="active"}`,
		"resman_registry_bytes ",
		"resman_cleanup_success_ratio 1",
		"# TYPE resman_close_duration_seconds histogram",
		`resman_cleanup_duration_seconds_bucket{le="+Inf"} 0`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("metrics (%d) lack %q:\n%s", code, want, body)
		}
	}
	s.stop(t)

	s = start(t, bin, data, config)
	if code, body := s.do(t, "GET", "/kv/alice", ""); code != 200 || body != "admin" {
		t.Fatalf("GET after restart: %d %q", code, body)
	}
	s.stop(t)
}
