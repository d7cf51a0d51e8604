package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/mailcatch"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/notify"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/state"
)

// notifyProcess is one `resumer serve --roles notify` process of a test.
type notifyProcess struct {
	cmd   *exec.Cmd
	admin string // the admin listener's URL
	log   *testenv.Buffer
}

// startNotifyProcess starts the binary bin as a notify replica with environ and waits for its
// admin listener.
func startNotifyProcess(t *testing.T, bin string, environ []string) *notifyProcess {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--roles", "notify", "--admin-addr", "127.0.0.1:0")
	cmd.Env = environ
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &notifyProcess{cmd: cmd, log: &testenv.Buffer{}}
	cmd.Stderr = p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	admin := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil && m[1] == "admin" {
				admin <- m[2]
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case p.admin = <-admin:
	case <-time.After(60 * time.Second):
		t.Fatalf("notify process did not listen within 60s; stderr:\n%s", p.log.String())
	}
	return p
}

var metricLine = regexp.MustCompile(`(?m)^(\S+?)(\{[^}]*\})? (\S+)$`)

// metricSum adds up the samples of name whose labels contain every one of want.
func (p *notifyProcess) metricSum(t *testing.T, name string, want ...string) float64 {
	t.Helper()
	_, body := get(t, p.admin+"/metrics")
	sum := 0.0
	for _, m := range metricLine.FindAllStringSubmatch(body, -1) {
		if m[1] != name {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(m[2], w)
		}
		if v, err := strconv.ParseFloat(m[3], 64); ok && err == nil {
			sum += v
		}
	}
	return sum
}

// TestKillNotifyProcessMidSend: three notify processes of the real binary share the reminder
// schedule. The first is killed with SIGKILL while its SMTP server holds the reply to a
// reminder it sent (the message has arrived; the process never learns it). The others take
// its leases over after RESUMER_NOTIFY_LEASE: no stage goes out twice, every stage is done,
// and a stage without an e-mail is one counted as uncertain.
func TestKillNotifyProcessMidSend(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	const count = 12
	bin := filepath.Join(t.TempDir(), "resumer")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// Inquiries expiring in 50 minutes: the 1h stage is due at once (the 6h one superseded).
	sim := personatest.NewServer(t, personatest.Options{AfterCreate: 50 * time.Minute, RateLimit: 1_000_000})
	rdb, prefix := testenv.Redis(t)
	store, err := state.New(rdb, state.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, count)
	for i := range ids {
		inq := sim.CreateInquiry(personatest.InquiryParams{EmailAddress: fmt.Sprintf("user%d@example.com", i)})
		if err := sim.Start(inq.ID); err != nil {
			t.Fatal(err)
		}
		ids[i] = inq.ID
	}
	for _, se := range sim.Events() {
		ev, err := persona.ParseEvent(se.Body)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Apply(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	// The SMTP server answers each message 2 s after it arrived.
	mail := mailcatch.Start(t, mailcatch.Options{DataDelay: 2 * time.Second, MaxMessages: 1000})
	environ := []string{
		"RESUMER_REDIS_URL=" + testenv.RedisURL(t),
		"RESUMER_REDIS_PREFIX=" + prefix,
		"RESUMER_PERSONA_API_URL=" + sim.URL(),
		"RESUMER_PERSONA_API_KEY=" + sim.APIKey(),
		"RESUMER_CHANNELS=email",
		"RESUMER_SMTP_URL=" + mail.URL(),
		"RESUMER_MAIL_FROM=Acme Verification <verify@acme.example>",
		"RESUMER_NOTIFY_LEASE=5s",
		"RESUMER_NOTIFY_INTERVAL=200ms",
		"RESUMER_NOTIFY_CONCURRENCY=2",
		"RESUMER_LOG_LEVEL=info",
	}

	first := startNotifyProcess(t, bin, environ)
	waitFor(t, 60*time.Second, "the first reminder to reach the SMTP server", func() bool { return len(mail.Messages()) > 0 })
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait()
	sentByFirst := len(mail.Messages())
	survivors := []*notifyProcess{startNotifyProcess(t, bin, environ), startNotifyProcess(t, bin, environ)}

	waitFor(t, 2*time.Minute, "every inquiry's 1h stage settled", func() bool {
		for _, id := range ids {
			inq, err := store.Inquiry(context.Background(), id)
			if err != nil || !strings.Contains(","+strings.Join(inq.RemindersSent, ",")+",", ",1h,") {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond) // let a duplicate, if any, arrive

	perStage := map[string]int{}
	for _, m := range mail.Messages() {
		perStage[m.MessageID]++
	}
	delivered := 0
	for _, id := range ids {
		switch n := perStage[notify.MessageID(id, "1h", "acme.example")]; n {
		case 0:
		case 1:
			delivered++
		default:
			t.Errorf("inquiry %s got its 1h reminder %d times", id, n)
		}
	}
	var uncertain, expiries float64
	for _, p := range survivors {
		uncertain += p.metricSum(t, "resumer_reminders_total", `stage="1h"`, `channel="email"`, `outcome="uncertain"`)
		expiries += p.metricSum(t, "resumer_reminder_lease_expiries_total")
	}
	t.Logf("first process sent %d before SIGKILL; %d of %d delivered; %v uncertain; %v lease expiries",
		sentByFirst, delivered, count, uncertain, expiries)
	if uncertain < 1 || expiries < 1 {
		t.Errorf("uncertain = %v, lease expiries = %v; want at least 1 of each (the killed send)", uncertain, expiries)
	}
	if lost := count - delivered; float64(lost) > uncertain {
		t.Errorf("%d stages without an e-mail but only %v counted as uncertain", lost, uncertain)
	}
}
