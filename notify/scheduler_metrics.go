package notify

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/internal/promreg"
)

// Outcomes of a reminder stage per channel: the outcome label of resumer_reminders_total.
const (
	// OutcomeSent: the channel accepted the reminder.
	OutcomeSent = "sent"
	// OutcomeSkippedTooLate: the stage was due but not sent, because less than MinRemaining
	// was left or because a later stage (closer to expiry) was due too and went instead.
	OutcomeSkippedTooLate = "skipped_too_late"
	// OutcomeNoContact: the channel had no contact for the user (e-mail without an address);
	// no link was minted for it.
	OutcomeNoContact = "no_contact"
	// OutcomeUndeliverable: the channel cannot deliver to the user's address as it is
	// (ErrUndeliverable: a non-ASCII local part without SMTPUTF8, an invalid IDN domain);
	// permanent, never retried.
	OutcomeUndeliverable = "undeliverable"
	// OutcomeNotResumable: Persona answered 404 or 409 when the link was minted: the inquiry
	// moved on before its event reached us. Its reminders are dropped.
	OutcomeNotResumable = "not_resumable"
	// OutcomeFailed: the channel, or minting the link, failed for good (a rejected address,
	// a 4xx from the webhook, Persona refusing the request); the stage is not retried.
	OutcomeFailed = "failed"
	// OutcomeHeldOut: the inquiry is in the holdout (SchedulerOptions.Holdout): the reminder
	// was due and would have gone out on this channel, but was skipped on purpose.
	OutcomeHeldOut = "held_out"
	// OutcomeUncertain: a replica recorded its intent to send the stage and its lease ran
	// out before it settled (it crashed, or lost Redis for longer than the settle budget), or
	// the channel handed the reminder over and got no answer (ErrMaybeDelivered: the SMTP
	// server had the whole message when the connection broke or the time ran out).
	// The stage may or may not have reached the user; it is marked done and never sent again.
	OutcomeUncertain = "uncertain"
	// OutcomeTooOld: the inquiry was created longer ago than the maximum age
	// (RESUMER_RESUME_MAX_AGE): it is not resumed any more, and its reminders are dropped.
	OutcomeTooOld = "too_old"
)

var outcomes = []string{OutcomeSent, OutcomeSkippedTooLate, OutcomeNoContact, OutcomeUndeliverable, OutcomeNotResumable, OutcomeFailed, OutcomeHeldOut, OutcomeUncertain, OutcomeTooOld}

// schedulerMetrics are the scheduler's series. Labels are bounded: stage by the configured
// stages, channel by the configured channels, outcome by the constants above.
type schedulerMetrics struct {
	reminders     *prometheus.CounterVec
	backlog       prometheus.Gauge
	dueNextHour   prometheus.Gauge
	budgetPerHour prometheus.Gauge
	delay         prometheus.Observer
	leaseExpiries prometheus.Counter
	sweepDuration prometheus.Observer
}

// newSchedulerMetrics creates the scheduler's collectors and registers them on reg (nil:
// nowhere), reusing identical collectors registered before (several schedulers in one
// process, as in tests). Every stage, channel and outcome series starts at zero.
func newSchedulerMetrics(reg prometheus.Registerer, stages []Stage, channels []Channel) schedulerMetrics {
	reminders := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "resumer_reminders_total",
		Help: "Reminder stages by outcome and channel (sent, skipped_too_late, no_contact, not_resumable, failed, held_out, uncertain, too_old).",
	}, []string{"stage", "channel", "outcome"})
	backlog := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "resumer_reminder_due_backlog",
		Help: "Inquiries whose next reminder is due and not claimed, after the last sweep.",
	})
	dueNextHour := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "resumer_reminder_due_next_hour",
		Help: "Reminders due within the next hour, the unclaimed backlog included (an upper bound), after the last sweep.",
	})
	budgetPerHour := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "resumer_reminder_persona_budget_per_hour",
		Help: "Persona calls the shared rate limiter grants per hour (all replicas together); 0 when reminders make no Persona call.",
	})
	delay := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "resumer_reminder_delay_seconds",
		Help: "Time from a reminder stage's due time to its delivery.",
		// One second to about 4.5 hours.
		Buckets: prometheus.ExponentialBuckets(1, 2, 15),
	})
	leaseExpiries := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "resumer_reminder_lease_expiries_total",
		Help: "Reminder claims taken over because their lease ran out unsettled (a replica crashed, hung or lost Redis).",
	})
	sweepDuration := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "resumer_notify_sweep_duration_seconds",
		Help: "Duration of reminder sweeps: claiming, minting links, delivering and settling.",
		// 1 ms to about 65 s.
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 17),
	})
	if reg != nil {
		reminders = promreg.Register(reg, reminders)
		backlog = promreg.Register(reg, backlog)
		dueNextHour = promreg.Register(reg, dueNextHour)
		budgetPerHour = promreg.Register(reg, budgetPerHour)
		delay = promreg.Register(reg, delay)
		leaseExpiries = promreg.Register(reg, leaseExpiries)
		sweepDuration = promreg.Register(reg, sweepDuration)
	}
	for _, st := range stages {
		for _, ch := range channels {
			for _, o := range outcomes {
				reminders.WithLabelValues(st.Name, ch.Name(), o)
			}
		}
	}
	return schedulerMetrics{
		reminders:     reminders,
		backlog:       backlog,
		dueNextHour:   dueNextHour,
		budgetPerHour: budgetPerHour,
		delay:         delay,
		leaseExpiries: leaseExpiries,
		sweepDuration: sweepDuration,
	}
}
