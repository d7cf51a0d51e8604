package eventstream_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
)

func TestNewSubjects(t *testing.T) {
	tests := []struct {
		prefix, wantPrefix, wantErr string
	}{
		{"", "persona.events", ""},
		{"persona.events", "persona.events", ""},
		{"staging.persona.events", "staging.persona.events", ""},
		{"prod", "prod", ""},
		{"a-b_c.D9", "a-b_c.D9", ""},
		{"persona.events.", "", "empty token"},
		{".persona", "", "empty token"},
		{"persona..events", "", "empty token"},
		{"persona.*", "", `"*"`},
		{"persona.>", "", `">"`},
		{"persona events", "", `" "`},
		{"persona\tevents", "", "not allowed"},
		{"$JS.events", "", "'$'"},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			s, err := eventstream.NewSubjects(tt.prefix)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewSubjects(%q) = %v, want an error containing %s", tt.prefix, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewSubjects(%q): %v", tt.prefix, err)
			}
			if got := s.Prefix(); got != tt.wantPrefix {
				t.Errorf("Prefix() = %q, want %q", got, tt.wantPrefix)
			}
			if got, want := s.Filter(), tt.wantPrefix+".>"; got != want {
				t.Errorf("Filter() = %q, want %q", got, want)
			}
		})
	}
}

func TestSubjectsEvent(t *testing.T) {
	staging, err := eventstream.NewSubjects("staging.persona")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		s         eventstream.Subjects
		name      string
		want      string
		contained bool
	}{
		{eventstream.Subjects{}, "inquiry.started", "persona.events.inquiry.started", true},
		{staging, "inquiry.started", "staging.persona.inquiry.started", true},
		{staging, "", "staging.persona._", true},
		{staging, "odd name.*.>", "staging.persona.odd_name._._", true},
		{staging, "a..b", "staging.persona.a._.b", true},
	}
	for _, tt := range tests {
		got := tt.s.Event(tt.name)
		if got != tt.want {
			t.Errorf("%s.Event(%q) = %q, want %q", tt.s.Prefix(), tt.name, got, tt.want)
		}
		if tt.s.Contains(got) != tt.contained {
			t.Errorf("%s.Contains(%q) = %v", tt.s.Prefix(), got, !tt.contained)
		}
	}
	if eventstream.Subject("inquiry.started") != (eventstream.Subjects{}).Event("inquiry.started") {
		t.Error("Subject differs from the default scheme's Event")
	}
	for _, subject := range []string{"persona.events.inquiry.started", "staging.persona", "staging.personality.x", "other.inquiry"} {
		if staging.Contains(subject) {
			t.Errorf("staging.persona contains %q", subject)
		}
	}
}

// TestEnsureSubjectsOverlap: two deployments in one NATS account need two prefixes; with the
// same one, the second start-up fails with ErrSubjectsOverlap naming the stream in the way.
func TestEnsureSubjectsOverlap(t *testing.T) {
	s := testenv.NATS(t)
	js := testenv.JetStream(t, s.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ensure := func(name, prefix string) error {
		t.Helper()
		subjects, err := eventstream.NewSubjects(prefix)
		if err != nil {
			t.Fatal(err)
		}
		_, err = eventstream.Ensure(ctx, js, eventstream.Config{Name: name, Subjects: subjects})
		return err
	}

	if err := ensure("PRODUCTION", ""); err != nil {
		t.Fatalf("first stream: %v", err)
	}
	if err := ensure("PRODUCTION", ""); err != nil {
		t.Fatalf("the same stream again (a restart): %v", err)
	}
	for _, prefix := range []string{"", "persona", "persona.events.inquiry"} {
		err := ensure("STAGING", prefix)
		if !errors.Is(err, eventstream.ErrSubjectsOverlap) {
			t.Fatalf("prefix %q beside PRODUCTION's persona.events: err = %v, want ErrSubjectsOverlap", prefix, err)
		}
		if !strings.Contains(err.Error(), "stream PRODUCTION") {
			t.Errorf("error does not name the stream in the way: %v", err)
		}
	}
	if err := ensure("STAGING", "staging.persona.events"); err != nil {
		t.Fatalf("a prefix of its own: %v", err)
	}

	// Each deployment's events land in its own stream.
	staging, _ := eventstream.NewSubjects("staging.persona.events")
	for stream, subject := range map[string]string{
		"PRODUCTION": eventstream.Subject("inquiry.started"),
		"STAGING":    staging.Event("inquiry.started"),
	} {
		ack, err := js.Publish(ctx, subject, []byte("{}"))
		if err != nil {
			t.Fatalf("publish %s: %v", subject, err)
		}
		if ack.Stream != stream {
			t.Errorf("%s stored in %s, want %s", subject, ack.Stream, stream)
		}
	}
}

// TestSubjectsMessage: a deployment's prefix moves both kinds of subject, and the message is
// the default scheme's otherwise (same headers, same body).
func TestSubjectsMessage(t *testing.T) {
	staging, err := eventstream.NewSubjects("staging.persona.events")
	if err != nil {
		t.Fatal(err)
	}
	received := time.Date(2026, 1, 5, 10, 0, 3, 0, time.UTC)
	body := []byte(`{"data":{}}`)
	inquiryEvent := &persona.Event{ID: "evt_1", Name: "inquiry.started", InquiryID: "inq_1", PayloadType: "inquiry",
		CreatedAt: time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)}
	accountEvent := &persona.Event{ID: "evt_2", Name: "account.created", PayloadType: "account", TimeSource: persona.TimeUnknown}
	tests := []struct {
		ev          *persona.Event
		def, staged string
		other       bool
	}{
		{inquiryEvent, "persona.events.inquiry.started", "staging.persona.events.inquiry.started", false},
		{accountEvent, "persona.events.other.account.created", "staging.persona.events.other.account.created", true},
	}
	for _, tt := range tests {
		def := eventstream.Message(tt.ev, body, received)
		staged := staging.Message(tt.ev, body, received)
		if def.Subject != tt.def || staged.Subject != tt.staged {
			t.Errorf("%s: subjects %q and %q, want %q and %q", tt.ev.Name, def.Subject, staged.Subject, tt.def, tt.staged)
		}
		if staging.IsOther(staged.Subject) != tt.other || eventstream.IsOtherSubject(def.Subject) != tt.other {
			t.Errorf("%s: IsOther wrong", tt.ev.Name)
		}
		if staging.IsOther(def.Subject) || eventstream.IsOtherSubject(staged.Subject) {
			t.Errorf("%s: one scheme recognises the other's subject", tt.ev.Name)
		}
		if !reflect.DeepEqual(def.Header, staged.Header) || string(staged.Data) != string(body) {
			t.Errorf("%s: headers or body differ between schemes:\n%v\n%v", tt.ev.Name, def.Header, staged.Header)
		}
		if got := staged.Header.Get(nats.MsgIdHdr); got != tt.ev.ID {
			t.Errorf("%s: Nats-Msg-Id = %q", tt.ev.Name, got)
		}
	}
}
