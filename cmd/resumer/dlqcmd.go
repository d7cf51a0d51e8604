package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resumer/resumer/worker"
)

// dlqCommand implements `resumer dlq list|replay`: inspecting and re-publishing events the
// worker could not apply.
func dlqCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub, err := subcommand("dlq", args, stdout, "list", "replay")
	if err != nil {
		return err
	}
	var all, asJSON bool
	var limit int
	cfg, pos, err := loadConfig("dlq "+sub, args[1:], getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&all, "all", false, "replay every dead letter (replay only)")
		fs.BoolVar(&asJSON, "json", false, "print JSON (list only)")
		fs.IntVar(&limit, "limit", 1000, "list at most this many (list only)")
	})
	if err != nil {
		return err
	}
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("resumer-dlq"), nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("dlq %s: connect to nats: %w", sub, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("dlq %s: %w", sub, err)
	}
	if sub == "list" {
		letters, err := worker.ListDeadLetters(ctx, js, cfg.DLQStream, limit)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			// A fresh install: the worker creates the stream when it first runs, and until
			// then there is nothing dead-lettered.
			letters, err = []worker.DeadLetter{}, nil
		}
		if err != nil {
			return fmt.Errorf("dlq list: %w", err)
		}
		if asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(letters)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tREASON\tEVENT\tNAME\tBYTES")
		for _, l := range letters {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\n", l.Seq, l.Time.UTC().Format(time.RFC3339), l.Reason, l.EventID, l.EventName, l.Size)
		}
		return tw.Flush()
	}
	var seqs []uint64
	switch {
	case all && len(pos) > 0:
		return errors.New("dlq replay: give --all or sequence numbers, not both")
	case !all && len(pos) == 0:
		return errors.New("dlq replay: give --all or the sequence numbers to replay")
	}
	for _, p := range pos {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || n == 0 {
			return fmt.Errorf("dlq replay: %q is not a sequence number", p)
		}
		seqs = append(seqs, n)
	}
	n, err := worker.ReplayDeadLetters(ctx, js, cfg.DLQStream, seqs)
	fmt.Fprintf(stdout, "replayed %d dead letter(s)\n", n)
	if err != nil {
		return fmt.Errorf("dlq replay: %w", err)
	}
	return nil
}
