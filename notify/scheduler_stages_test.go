package notify

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/state"
)

// TestDueStages: which stages of a claim are due; a stage is never due after a later one is
// done (also one this replica does not know), nor when it was added to the configuration
// after its due time for the inquiry.
func TestDueStages(t *testing.T) {
	stages, err := schedulerStages([]time.Duration{6 * time.Hour, 3 * time.Hour, time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s := &Scheduler{stages: stages}
	x := schedT0.Add(24 * time.Hour)
	tests := []struct {
		name  string
		now   time.Time
		sent  []string
		added map[string]time.Time
		want  string
	}{
		{"none yet", x.Add(-7 * time.Hour), nil, nil, "[]"},
		{"6h", x.Add(-6 * time.Hour), nil, nil, "[6h]"},
		{"all three, late", x.Add(-30 * time.Minute), nil, nil, "[6h 3h 1h]"},
		{"6h done", x.Add(-2 * time.Hour), []string{"6h"}, nil, "[3h]"},
		{"1h done first", x.Add(-30 * time.Minute), []string{"1h"}, nil, "[]"},
		{"a 2h stage of another replica done", x.Add(-90 * time.Minute), []string{"2h"}, nil, "[]"},
		{"a channel mark is no stage", x.Add(-2 * time.Hour), []string{"6h", "3h@email"}, nil, "[3h]"},
		{"3h added after its time", x.Add(-2 * time.Hour), []string{"6h"}, map[string]time.Time{"3h": x.Add(-150 * time.Minute)}, "[]"},
		{"3h added before its time", x.Add(-2 * time.Hour), []string{"6h"}, map[string]time.Time{"3h": x.Add(-4 * time.Hour)}, "[3h]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := state.Claim{ExpiresAt: x, RemindersSent: tt.sent, StagesAdded: tt.added}
			if got := fmt.Sprint(stageNames(s.dueStages(c, tt.now))); got != tt.want {
				t.Errorf("dueStages = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestSchedulerForecastGauges: resumer_reminder_due_next_hour counts the reminders due now and
// within the hour, not later ones.
func TestSchedulerForecastGauges(t *testing.T) {
	e := newSchedEnv(t)
	for range 3 {
		e.pending(t, personatest.InquiryParams{EmailAddress: "jane@example.com"})
	}
	e.clock.Add(3 * time.Hour)
	e.pending(t, personatest.InquiryParams{EmailAddress: "late@example.com"})
	e.clock.Add(14*time.Hour + 30*time.Minute) // the first three's 6h stage is due within the hour
	e.sync(t)
	s := e.scheduler(t, nil, nil)
	if err := s.updateGauges(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.metric(t, "resumer_reminder_due_next_hour"); got != 3 {
		t.Errorf("due next hour = %v, want 3", got)
	}
	if got := e.metric(t, "resumer_reminder_due_backlog"); got != 0 {
		t.Errorf("due now = %v, want 0", got)
	}
}
