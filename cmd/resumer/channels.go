package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/api"
	"github.com/resumer/resumer/link"
	"github.com/resumer/resumer/notify"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// newChannels builds the reminder channels of RESUMER_CHANNELS (the scheduler's and the
// win-back's). Every missing setting is an error naming it.
func newChannels(cfg *config, logger *slog.Logger, reg prometheus.Registerer) ([]notify.Channel, error) {
	var channels []notify.Channel
	for _, name := range cfg.Channels {
		switch name {
		case "email":
			if cfg.SMTPURL == "" {
				return nil, errors.New("RESUMER_SMTP_URL: required by the email channel")
			}
			if cfg.MailFrom == "" {
				return nil, errors.New("RESUMER_MAIL_FROM: required by the email channel")
			}
			ch, err := notify.NewEmailChannel(notify.EmailOptions{
				URL:          cfg.SMTPURL,
				Password:     cfg.SMTPPassword,
				From:         cfg.MailFrom,
				RequireTLS:   cfg.SMTPRequireTLS,
				TemplatesDir: cfg.TemplatesDir,
				Brands:       cfg.Brands,
				Logger:       logger,
				Registerer:   reg,
			})
			if err != nil {
				return nil, fmt.Errorf("email channel: %w", err)
			}
			channels = append(channels, ch)
		case "webhook":
			if cfg.NotifyWebhookURL == "" || cfg.NotifyWebhookSecret == "" {
				return nil, errors.New("RESUMER_NOTIFY_WEBHOOK_URL and RESUMER_NOTIFY_WEBHOOK_SECRET: required by the webhook channel")
			}
			ch, err := notify.NewWebhookChannel(notify.WebhookOptions{
				URL:        cfg.NotifyWebhookURL,
				Secret:     cfg.NotifyWebhookSecret,
				Brands:     cfg.Brands,
				Logger:     logger,
				Registerer: reg,
			})
			if err != nil {
				return nil, fmt.Errorf("webhook channel: %w", err)
			}
			channels = append(channels, ch)
		}
	}
	return channels, nil
}

// newWinback builds the win-back of expired inquiries (RESUMER_WINBACK_WITHIN > 0) for the
// notify role: its channels, its link mode and the stale-inquiry guard.
func newWinback(cfg *config, rdb redis.UniversalClient, logger *slog.Logger, reg prometheus.Registerer) (*notify.Winback, error) {
	store, err := state.New(rdb, stateConfig(cfg, reg))
	if err != nil {
		return nil, err
	}
	channels, err := newChannels(cfg, logger, reg)
	if err != nil {
		return nil, err
	}
	opts := notify.WinbackOptions{
		Store:            store,
		Channels:         channels,
		Within:           cfg.WinbackWithin,
		Mode:             cfg.WinbackLinkMode,
		MaxAge:           maxAgeOption(cfg.ResumeMaxAge),
		MaxAgeByTemplate: cfg.ResumeMaxAgeByTmpl,
		Fallbacks:        link.Fallbacks(cfg.FallbackTemplates),
		HostedFlowURL:    cfg.HostedFlowURL,
		Interval:         max(cfg.NotifyInterval, 5*time.Second),
		Lease:            cfg.NotifyLease,
		Logger:           logger,
		Registerer:       reg,
	}
	if cfg.WinbackLinkMode == notify.LinkRedirect {
		if opts.Redirect, err = redirectSigner(cfg); err != nil {
			return nil, fmt.Errorf("RESUMER_WINBACK_LINK_MODE=redirect: %w", err)
		}
	}
	if cfg.WinbackLinkMode != notify.LinkRedirect || cfg.CurrentVersionOnly {
		client, err := newPersonaClient(cfg, rdb, logger, reg)
		if err != nil {
			return nil, err
		}
		opts.Persona = client
		opts.CurrentVersions = currentVersions(cfg, client)
	}
	return notify.NewWinback(opts)
}

// resumeExpiredWithin is the api role's window for resuming expired inquiries: the setting,
// widened to the win-back window when win-back messages carry redirect links, whose clicks
// resume expired inquiries.
func resumeExpiredWithin(cfg *config) time.Duration {
	if cfg.WinbackWithin > 0 && cfg.WinbackLinkMode == notify.LinkRedirect {
		return max(cfg.ResumeExpiredWithin, cfg.WinbackWithin)
	}
	return cfg.ResumeExpiredWithin
}

// currentVersions is the cached template-version lookup of RESUMER_RESUME_CURRENT_VERSION_ONLY,
// or nil when the check is off.
func currentVersions(cfg *config, client *persona.Client) api.TemplateVersions {
	if !cfg.CurrentVersionOnly {
		return nil
	}
	return &persona.TemplateVersions{Source: client}
}

// setRecheck turns on the re-check before reminding (RESUMER_RECHECK_AFTER) with the
// scheduler's Persona client, or one of its own in redirect mode.
func setRecheck(cfg *config, rdb redis.UniversalClient, logger *slog.Logger, reg prometheus.Registerer, opts *notify.SchedulerOptions) error {
	client, ok := opts.Persona.(*persona.Client)
	if !ok {
		var err error
		if client, err = newPersonaClient(cfg, rdb, logger, reg); err != nil {
			return fmt.Errorf("RESUMER_RECHECK_AFTER: %w", err)
		}
	}
	opts.Recheck, opts.RecheckAfter = client, cfg.RecheckAfter
	return nil
}
