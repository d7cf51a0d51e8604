// Package notify delivers the reminders resumer exists for: before a created or pending
// inquiry expires, the user gets a link that resumes it, by e-mail (EmailChannel) or through
// the customer's backend (WebhookChannel). DESIGN.md decisions 5, 7, 8 and 9 apply.
//
// The Scheduler (scheduler.go) wakes every interval, claims the reminders that are due from
// the state package's sharded schedule with a lease (so any number of replicas send each
// stage once, and a crashed replica's claims are taken over when the lease ends), re-reads
// the inquiry through the claim, mints the link and owns retries, backoff and the outcome
// metrics. A Channel makes one attempt to deliver one Reminder and says, Alertmanager style,
// whether a retry may succeed: Send(ctx, r) (retry bool, err error).
//
// Links come in three modes (LinkMode, linkmode.go): Persona's hosted flow with a session token
// (link.HostedFlowURL), Persona's one-time link, or a signed, expiring link to resumer's own /r/
// endpoint (link.Signer) that mints the token only when clicked.
//
// Secrets and personal data: the e-mail address and the link (which may carry a session
// token) go into the message and nowhere else. No log line, metric label or returned error
// contains them; SMTP errors keep the reply code and drop the reply text, which often echoes
// the address.
//
// Metrics: resumer_notify_channel_duration_seconds{channel} and
// resumer_notify_channel_errors_total{channel,retry}, registered on the Registerer given to
// the channel constructors.
package notify
