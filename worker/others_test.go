package worker

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/webhook"
)

// TestWorkerSkipsOtherObjects runs signed deliveries through the real receiver into the
// stream and the worker: events about other objects (PERSONA.md §4: account, case, report,
// transaction, a verification of no inquiry) are acknowledged and never touch the store;
// events about an inquiry's parts never create a record, and once the inquiry exists they
// move its last activity, with the payload's updated-at standing in for a missing
// created-at (§3). Nothing is dead-lettered.
func TestWorkerSkipsOtherObjects(t *testing.T) {
	e := newEnv(t)
	secret := []byte("wbhsec_worker_test")
	rc, err := webhook.New(webhook.Options{Secrets: [][]byte{secret}, Publisher: e.js, Stream: e.stream})
	if err != nil {
		t.Fatal(err)
	}
	fixture := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "persona", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const inq = "inq_VNb5oPDNrXhLMaWNkYBxDfJ2"
	for _, f := range []string{
		"account-created.kebab.json", "case-created.kebab.json", "report-watchlist-ready.kebab.json",
		"verification-passed.no-inquiry.kebab.json", "transaction-created.no-times.kebab.json",
		// Parts of an inquiry resumer has no record of yet.
		"document-submitted.no-created-at.kebab.json", "inquiry-session-started.kebab.json",
	} {
		deliverSigned(t, rc, secret, fixture(f))
	}
	opts := e.options(e.store)
	r := start(t, opts)
	eventually(t, 10*time.Second, "all acked", func() bool {
		info := e.consumerInfo(t, "")
		return info.NumAckPending == 0 && info.NumPending == 0 && info.AckFloor.Stream == 7
	})
	if got := inquiry(t, e.store, inq); got != nil {
		t.Fatalf("part events created a record: %+v", got)
	}

	// The inquiry starts; a later document event without created-at (updated-at 10:12:30.5)
	// becomes its last activity.
	deliverSigned(t, rc, secret, fixture("inquiry-started.kebab.json"))
	doc := strings.Replace(string(fixture("document-submitted.no-created-at.kebab.json")),
		"evt_Dc3mQ7wN1zK5tR9xL2vY8bH4", "evt_Dc3mQ7wN1zK5tR9xL2vY8bH5", 1)
	deliverSigned(t, rc, secret, []byte(doc))
	eventually(t, 10*time.Second, "inquiry applied", func() bool {
		got := inquiry(t, e.store, inq)
		return got != nil && got.LastEventName == "document.submitted"
	})
	got := inquiry(t, e.store, inq)
	if got.Status != "pending" || got.LastEventID != "evt_Dc3mQ7wN1zK5tR9xL2vY8bH5" {
		t.Errorf("inquiry = %+v, want pending with the document event last", got)
	}

	m := r.w.metrics
	if got := testutil.ToFloat64(m.events.WithLabelValues(eventOther, resultIgnored)); got != 7 {
		t.Errorf("events{other,ignored} = %v, want 7 (5 other objects, 1 part without a record, 1 second part)", got)
	}
	if got := testutil.ToFloat64(m.events.WithLabelValues("inquiry-session.started", resultIgnored)); got != 1 {
		t.Errorf("events{inquiry-session.started,ignored} = %v, want 1", got)
	}
	for _, reason := range deadReasons {
		if got := testutil.ToFloat64(m.deadLetters.WithLabelValues(reason)); got != 0 {
			t.Errorf("dead letters{%s} = %v, want 0", reason, got)
		}
	}
}

// TestWorkerSkipsOtherObjectsUnderPrefix: with a deployment's own subject prefix
// (RESUMER_SUBJECT_PREFIX), events about other objects are still recognised by their subject
// and acknowledged without being applied or dead-lettered.
func TestWorkerSkipsOtherObjectsUnderPrefix(t *testing.T) {
	e := newEnv(t)
	subjects, err := eventstream.NewSubjects("staging.persona.events")
	if err != nil {
		t.Fatal(err)
	}
	stream := e.stream + "_STAGING"
	if _, err := eventstream.Ensure(t.Context(), e.js, eventstream.Config{Name: stream, Subjects: subjects}); err != nil {
		t.Fatal(err)
	}
	secret := []byte("wbhsec_worker_test")
	rc, err := webhook.New(webhook.Options{Secrets: [][]byte{secret}, Publisher: e.js, Stream: stream, Subjects: subjects})
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join("..", "persona", "testdata", "account-created.kebab.json"))
	if err != nil {
		t.Fatal(err)
	}
	deliverSigned(t, rc, secret, body)

	opts := e.options(e.store)
	opts.Stream, opts.Subjects = stream, subjects
	r := start(t, opts)
	eventually(t, 10*time.Second, "acked", func() bool {
		c, err := e.js.Consumer(t.Context(), stream, DefaultDurable)
		if err != nil {
			return false
		}
		info, err := c.Info(t.Context())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0 && info.AckFloor.Stream == 1
	})
	m := r.w.metrics
	if got := testutil.ToFloat64(m.events.WithLabelValues(eventOther, resultIgnored)); got != 1 {
		t.Errorf("events{other,ignored} = %v, want 1", got)
	}
	for _, reason := range deadReasons {
		if got := testutil.ToFloat64(m.deadLetters.WithLabelValues(reason)); got != 0 {
			t.Errorf("dead letters{%s} = %v, want 0", reason, got)
		}
	}
}

// deliverSigned posts body, signed with secret, to the receiver rc as Persona would, and fails
// the test unless it answers 200.
func deliverSigned(t *testing.T, rc http.Handler, secret, body []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, webhook.Path, bytes.NewReader(body))
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, secret, time.Now()))
	rec := httptest.NewRecorder()
	rc.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("delivery answered %d, want 200", rec.Code)
	}
}
