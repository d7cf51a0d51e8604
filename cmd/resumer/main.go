// Command resumer keeps Persona inquiries from silently lapsing: it receives Persona's signed
// webhooks, keeps each inquiry's state in Redis and reminds users before their inquiry
// expires. `resumer help` lists its commands; configuration comes from RESUMER_* variables or
// the matching flags (README.md has the table).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is stamped at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "resumer:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: resumer <command> [flags]

commands:
  serve                     run the roles named by --roles / RESUMER_ROLES
  dev [--demo]              serve with embedded defaults (embedded NATS, the Persona simulator,
                            a mail catcher; a private redis-server when none answers)
                            --demo plays a scripted scenario of stalled users being reminded
  webhook sign (--secret S | --secret-file F) [--timestamp T] < body.json
                            print a valid Persona-Signature header for body.json
  webhook send --url U (--secret S | --secret-file F) [--timestamp T] [--fresh] < body.json
                            sign body.json and POST it to a receiver; says accepted or duplicate
                            --fresh gives the event a new id and moves its times to now
  inquiry show <inquiry-id> [--json] [--reveal]
                            print an inquiry's tracked record
  inquiry expiring [--within 2h] [--limit N] [--json]
                            list created/pending inquiries expiring soon
  report [--since 7d] [--by stage|channel|link-mode|brand] [--json]
                            are reminders working? the recovery funnel and the uplift
                            measured against the holdout (RESUMER_HOLDOUT_PERCENT)
  dlq list [--limit N] [--json]
                            list dead-lettered events
  dlq replay [--all | SEQ...]
                            re-publish dead letters to the events stream
  reconcile [--since 48h] [--dry-run]
                            one reconciliation pass: replay missed events, re-check open inquiries
  persona-sim [--addr A] [--api-key K] [--rate-limit N] [--log-level L]
              [--webhook-url U --webhook-secret S]
                            run the Persona simulator (control API under /_sim/)
  bench [flags] [scenario ...]
                            load generator and benchmarks (docs/BENCHMARKS.md);
                            "resumer bench -h" lists its flags
  config                    print the configuration variables as a Markdown table
  config check              validate the effective configuration (env, _FILE, flags) and
                            print it with secrets masked; non-zero exit on any problem
  version                   print the version

Every command that reads the configuration takes each RESUMER_* variable as a flag too;
"resumer serve -h" lists them with their types and defaults.
`

// run is the whole program: it dispatches on the first argument and returns when the command
// is done or ctx is cancelled.
// -h or --help anywhere a command accepts flags prints that command's help and succeeds.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, getenv, stdin, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serveCommand(ctx, rest, getenv, stdout, stderr)
	case "dev":
		return devCommand(ctx, rest, getenv, stdout, stderr)
	case "webhook":
		return webhookCommand(ctx, rest, stdin, stdout, stderr)
	case "inquiry":
		return inquiryCommand(ctx, rest, getenv, stdout, stderr)
	case "report":
		return reportCommand(ctx, rest, getenv, stdout, stderr)
	case "dlq":
		return dlqCommand(ctx, rest, getenv, stdout, stderr)
	case "reconcile":
		return reconcileCommand(ctx, rest, getenv, stdout, stderr)
	case "persona-sim":
		return personaSimCommand(ctx, rest, stdout, stderr)
	case "bench":
		return benchCommand(ctx, rest, stdout, stderr)
	case "config":
		return configCommand(rest, getenv, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "resumer", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
