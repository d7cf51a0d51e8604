// Package notify will send the reminders resumer exists for: before a created or pending
// inquiry expires it mints a fresh session token through Persona's resume API and e-mails the
// user a resume link (or calls the customer's webhook), exactly once per reminder stage
// across any number of replicas. It reads due work from the schedule the state package keeps
// and claims each item with a lease (DESIGN.md decisions 4, 5, 7).
//
// The package is empty until the notifier issue lands; `resumer serve` does not offer the
// notify role yet.
package notify
