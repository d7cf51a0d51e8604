package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/resumer/resumer/persona/personatest"
)

// demoUser is one scripted user of the demo.
type demoUser struct {
	name, email, reference string
	start, complete        bool
}

var demoUsers = []demoUser{
	{name: "Jane", email: "jane@example.com", reference: "demo-jane", start: true, complete: true},
	{name: "Omar", email: "omar@example.com", reference: "demo-omar", start: true},
	{name: "Mei", email: "mei@example.com", reference: "demo-mei"},
	{name: "Lars", email: "lars@example.com", reference: "demo-lars", start: true, complete: true},
	{name: "", email: "", reference: "demo-no-email", start: true},
}

// runDemo plays a short scenario against the simulator: a few users start verifications,
// some finish, some stall. The simulator's webhooks carry every step to resumer; about 30 s
// later the stalled users' reminders arrive at the mail catcher.
func runDemo(ctx context.Context, sim *personatest.Server, mailPage string, out io.Writer) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Second):
	}
	fmt.Fprintln(out, "demo: five users begin verifying")
	for _, u := range demoUsers {
		inq := sim.CreateInquiry(personatest.InquiryParams{ReferenceID: u.reference, EmailAddress: u.email, NameFirst: u.name})
		what := "opens the link and leaves (created)"
		if u.start {
			if err := sim.Start(inq.ID); err != nil {
				fmt.Fprintf(out, "demo: start %s: %v\n", inq.ID, err)
				continue
			}
			what = "starts and stalls (pending)"
		}
		if u.complete {
			if err := sim.Complete(inq.ID); err != nil {
				fmt.Fprintf(out, "demo: complete %s: %v\n", inq.ID, err)
				continue
			}
			what = "starts and finishes (completed)"
		}
		if u.email == "" {
			what += ", no e-mail address on file"
		}
		fmt.Fprintf(out, "demo: %-14s %s %s\n", u.reference, inq.ID, what)
	}
	fmt.Fprintf(out, "demo: reminders for the stalled users fall due in about 30 s; watch %s\n", mailPage)
	fmt.Fprintln(out, "demo: inspect one with: go run ./cmd/resumer inquiry show <inquiry-id>")
}
