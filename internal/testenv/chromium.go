package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Chromium returns the path of Debian's headless-capable chromium, or skips the test when it
// is not installed (apt-get install chromium; CI installs it).
func Chromium(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (Debian package chromium)")
	}
	return bin
}

// chromiumFlags keep a headless chromium off the network beyond the URLs it is given (this
// machine has none) and out of any profile.
func chromiumFlags(t testing.TB) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--disable-extensions", "--user-data-dir=" + t.TempDir()}
}

// RunChromium runs bin headless on url with extra flags (--dump-dom, --screenshot=...,
// --window-size=W,H; the last --window-size wins) and returns its standard output. A minute
// bounds it.
func RunChromium(t testing.TB, bin, url string, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append(append(chromiumFlags(t), "--window-size=800,600"), flags...)
	out, err := exec.CommandContext(ctx, bin, append(args, url)...).Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", flags, err)
	}
	return string(out)
}

// Browser is a headless chromium driven over the DevTools protocol through a pipe
// (--remote-debugging-pipe: commands on fd 3, answers on fd 4, NUL-terminated JSON), so a
// test can click a button as a user would. One page, one session; not safe for concurrent
// use.
type Browser struct {
	t       testing.TB
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *bufio.Reader
	mu      sync.Mutex
	nextID  int
	session string
}

// StartBrowser starts bin headless with an empty page. The browser is stopped by t's cleanup.
func StartBrowser(t testing.TB, bin string) *Browser {
	t.Helper()
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	resR, resW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	args := append(chromiumFlags(t), "--window-size=800,600", "--remote-debugging-pipe", "about:blank")
	cmd := exec.Command(bin, args...)
	cmd.ExtraFiles = []*os.File{cmdR, resW} // fd 3, fd 4
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	cmdR.Close()
	resW.Close()
	b := &Browser{t: t, cmd: cmd, in: cmdW, out: bufio.NewReader(resR)}
	t.Cleanup(func() {
		cmdW.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		resR.Close()
	})
	var target struct {
		TargetID string `json:"targetId"`
	}
	b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	b.session = attached.SessionID
	b.call(b.session, "Page.enable", nil, nil)
	return b
}

// call sends one DevTools command and decodes its result into result (when not nil),
// skipping events. It fails the test on a protocol error or after a minute.
func (b *Browser) call(session, method string, params any, result any) {
	b.t.Helper()
	if err := b.try(session, method, params, result); err != nil {
		b.t.Fatal(err)
	}
}

// try is call returning the error.
func (b *Browser) try(session, method string, params any, result any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextID++
	id := b.nextID
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	raw, _ := json.Marshal(msg)
	if _, err := b.in.Write(append(raw, 0)); err != nil {
		return fmt.Errorf("devtools %s: %w", method, err)
	}
	deadline := time.AfterFunc(time.Minute, func() { b.cmd.Process.Kill() })
	defer deadline.Stop()
	for {
		line, err := b.out.ReadBytes(0)
		if err != nil {
			return fmt.Errorf("devtools %s: read: %w", method, err)
		}
		var reply struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(line[:len(line)-1], &reply); err != nil {
			return fmt.Errorf("devtools %s: decode: %w", method, err)
		}
		if reply.ID != id {
			continue // an event, or an answer to nobody
		}
		if reply.Error != nil {
			return fmt.Errorf("devtools %s: %s", method, reply.Error.Message)
		}
		if result != nil {
			if err := json.Unmarshal(reply.Result, result); err != nil {
				return fmt.Errorf("devtools %s: decode result: %w", method, err)
			}
		}
		return nil
	}
}

// Navigate opens url and waits until its document has loaded.
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	b.call(b.session, "Page.navigate", map[string]any{"url": url}, nil)
	b.WaitFor("document.readyState === 'complete' && location.href !== 'about:blank'")
}

// Eval evaluates a JavaScript expression in the page (DevTools evaluation is not subject to
// the page's Content-Security-Policy) and returns its value as JSON.
func (b *Browser) Eval(expr string) json.RawMessage {
	b.t.Helper()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	b.call(b.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res)
	if res.ExceptionDetails != nil {
		b.t.Fatalf("evaluate %q: %s", expr, res.ExceptionDetails.Text)
	}
	return res.Result.Value
}

// Text returns the page's visible text.
func (b *Browser) Text() string {
	b.t.Helper()
	var s string
	json.Unmarshal(b.Eval("document.body ? document.body.innerText : ''"), &s)
	return s
}

// URL returns the page's address.
func (b *Browser) URL() string {
	b.t.Helper()
	var s string
	json.Unmarshal(b.Eval("location.href"), &s)
	return s
}

// Click clicks the element the CSS selector names, as a user would (mouse press and release
// at its centre), failing the test when there is none or it is not visible.
func (b *Browser) Click(selector string) {
	b.t.Helper()
	sel, _ := json.Marshal(selector)
	var box struct{ X, Y, W, H float64 }
	raw := b.Eval(fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) return null;
		const r = e.getBoundingClientRect(); return {X: r.x, Y: r.y, W: r.width, H: r.height}; })()`, sel))
	if string(raw) == "null" || json.Unmarshal(raw, &box) != nil || box.W == 0 || box.H == 0 {
		b.t.Fatalf("click %s: no visible element", selector)
	}
	x, y := box.X+box.W/2, box.Y+box.H/2
	for _, typ := range []string{"mousePressed", "mouseReleased"} {
		b.call(b.session, "Input.dispatchMouseEvent", map[string]any{"type": typ, "x": x, "y": y,
			"button": "left", "clickCount": 1}, nil)
	}
}

// WaitFor polls a JavaScript condition until it is true, failing the test after a minute.
// Navigation in between is fine.
func (b *Browser) WaitFor(cond string) {
	b.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var ok bool
		var res struct {
			Result struct {
				Value json.RawMessage `json:"value"`
			} `json:"result"`
		}
		err := b.try(b.session, "Runtime.evaluate", map[string]any{"expression": "!!(" + cond + ")", "returnByValue": true}, &res)
		if err == nil && json.Unmarshal(res.Result.Value, &ok) == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatalf("wait for %s: still false after a minute", cond)
}

// SetViewport makes the page w×h CSS pixels (mobile: a phone's touch and meta-viewport
// handling too), as a phone or a desktop window would show it.
func (b *Browser) SetViewport(w, h int, mobile bool) {
	b.t.Helper()
	b.call(b.session, "Emulation.setDeviceMetricsOverride", map[string]any{"width": w, "height": h,
		"deviceScaleFactor": 1, "mobile": mobile}, nil)
}

// Screenshot saves a PNG of the whole page (beyond the viewport) to path.
func (b *Browser) Screenshot(path string) {
	b.t.Helper()
	var res struct {
		Data []byte `json:"data"` // base64 in JSON, decoded by encoding/json
	}
	b.call(b.session, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &res)
	if len(res.Data) == 0 {
		b.t.Fatalf("screenshot %s: empty", path)
	}
	if err := os.WriteFile(path, res.Data, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
