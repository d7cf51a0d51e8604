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
	fmt.Fprintf(stdout, "%s %s\n", resp.Status, strings.TrimSpace(string(respBody)))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook send: receiver answered %s", resp.Status)
	}
	return nil
}

// freshenEvent gives an event envelope a new event id and created-at, so the same fixture
// can be sent again without being deduplicated.
func freshenEvent(body []byte, at time.Time) ([]byte, error) {
	var env map[string]any
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	data, ok := env["data"].(map[string]any)
	if !ok {
		return nil, errors.New("no data object")
	}
	var b [8]byte
	rand.Read(b[:])
	data["id"] = "evt_" + hex.EncodeToString(b[:]) + strconv.FormatInt(at.Unix()%1000, 10)
	if attrs, ok := data["attributes"].(map[string]any); ok {
		for _, k := range []string{"created-at", "createdAt", "created_at"} {
			if _, ok := attrs[k]; ok {
				attrs[k] = at.UTC().Format("2006-01-02T15:04:05.000Z")
			}
		}
	}
	return json.Marshal(env)
}
