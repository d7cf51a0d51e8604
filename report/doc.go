// Package report answers "are reminders working?": it turns the recovery funnel counts the
// state store keeps (state.Store.Funnel) into a report of what users did after their
// reminders, per stage, channel, link mode or brand, and into the measured uplift: the
// completion rate of reminded inquiries against the held-out ones (notify.Holdout), their
// difference with a 95 % confidence interval (Newcombe's hybrid score interval from Wilson
// intervals), and the verifications the reminders saved. It renders the report as a text
// table (resumer report), JSON (GET /v1/report, resumer report --json) and an HTML page with
// server-rendered SVG charts (the admin listener's /report).
package report
