package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/resumer/resumer/webhook"
)

// webhookCommand implements `resumer webhook sign|send`: the tools a developer uses to try
// the receiver by hand.
func webhookCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	sub, err := subcommand("webhook", args, stdout, "sign", "send")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("webhook "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, synopsis("webhook "+sub))
	secret := fs.String("secret", "", "webhook secret (wbhsec_...)")
	secretFile := fs.String("secret-file", "", "read the secret from this file instead of --secret")
	ts := fs.Int64("timestamp", 0, "unix seconds to sign with (default now)")
	target := fs.String("url", "", "receiver URL, e.g. http://127.0.0.1:8080/webhooks/persona (send only)")
	fresh := fs.Bool("fresh", false, "replace the event's id and created-at with new ones before signing (send only)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	key := *secret
	if *secretFile != "" {
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			return fmt.Errorf("webhook %s: read secret: %w", sub, err)
		}
		key = strings.TrimSpace(string(b))
	}
	if key == "" {
		return fmt.Errorf("webhook %s: --secret or --secret-file is required", sub)
	}
	body, err := io.ReadAll(io.LimitReader(stdin, 64<<20))
	if err != nil {
		return fmt.Errorf("webhook %s: read body from stdin: %w", sub, err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("webhook %s: empty body on stdin", sub)
	}
	at := time.Now()
	if *ts != 0 {
		at = time.Unix(*ts, 0)
	}
	if sub == "sign" {
		fmt.Fprintln(stdout, "Persona-Signature: "+webhook.Sign(body, []byte(key), at))
		return nil
	}
	if *target == "" {
		return errors.New("webhook send: --url is required")
	}
	if *fresh {
		if body, err = freshenEvent(body, at); err != nil {
			return fmt.Errorf("webhook send: --fresh: %w", err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook send: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Persona-Signature", webhook.Sign(body, []byte(key), at))
	req.Header.Set("Persona-Webhook-Attempts-Made", "1")
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook send: %w", err)
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		fmt.Fprintf(stdout, "%s %s\n", resp.Status, strings.TrimSpace(string(respBody)))
		return fmt.Errorf("webhook send: receiver answered %s", resp.Status)
	}
	outcome := "accepted: stored in the events stream"
	if resp.Header.Get(webhook.OutcomeHeader) == "duplicate" {
		outcome = "duplicate: the stream already holds this event id (send with --fresh for a new one)"
	}
	fmt.Fprintf(stdout, "%s %s\n", resp.Status, outcome)
	return nil
}

// freshenEvent gives an event envelope a new event id and moves every timestamp in it (the
// event's created-at, the inquiry's created-at, started-at, expires-at, ...) by the same
// amount, so that the event's created-at becomes at: a fixture recorded days ago arrives as a
// live event with its spacing kept (an inquiry that expired "24 h after creation" still does,
// counted from now). Without an event created-at the latest timestamp is moved to at.
func freshenEvent(body []byte, at time.Time) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var env map[string]any
	if err := dec.Decode(&env); err != nil {
		return nil, err
	}
	data, ok := env["data"].(map[string]any)
	if !ok {
		return nil, errors.New("no data object")
	}
	var b [8]byte
	rand.Read(b[:])
	data["id"] = "evt_" + hex.EncodeToString(b[:]) + strconv.FormatInt(at.Unix()%1000, 10)

	var ref time.Time
	if attrs, ok := data["attributes"].(map[string]any); ok {
		for _, k := range []string{"created-at", "createdAt", "created_at"} {
			if v, ok := attrs[k].(string); ok {
				if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
					ref = t
				}
			}
		}
	}
	if ref.IsZero() {
		walkTimes(env, func(t time.Time) time.Time {
			if t.After(ref) {
				ref = t
			}
			return t
		})
	}
	if !ref.IsZero() {
		shift := at.Sub(ref)
		walkTimes(env, func(t time.Time) time.Time { return t.Add(shift) })
	}
	return json.Marshal(env)
}

// walkTimes calls f on every string in v that is an RFC 3339 time and stores what it returns.
func walkTimes(v any, f func(time.Time) time.Time) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok {
				if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
					v[k] = f(t).UTC().Format("2006-01-02T15:04:05.000Z")
				}
				continue
			}
			walkTimes(e, f)
		}
	case []any:
		for i, e := range v {
			if s, ok := e.(string); ok {
				if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
					v[i] = f(t).UTC().Format("2006-01-02T15:04:05.000Z")
				}
				continue
			}
			walkTimes(e, f)
		}
	}
}
