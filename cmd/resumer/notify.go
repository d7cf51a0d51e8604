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

// newPersonaClient builds the Persona API client, paced by the limiter every replica shares
// through Redis (DESIGN.md decision 6).
func newPersonaClient(cfg *config, rdb redis.UniversalClient, logger *slog.Logger, reg prometheus.Registerer) (*persona.Client, error) {
	client, _, err := newPersonaClientLimiter(cfg, rdb, logger, reg)
	return client, err
}

// newPersonaClientLimiter is newPersonaClient, also returning its shared limiter.
func newPersonaClientLimiter(cfg *config, rdb redis.UniversalClient, logger *slog.Logger, reg prometheus.Registerer) (*persona.Client, *state.RateLimiter, error) {
	if cfg.PersonaAPIKey == "" {
		return nil, nil, errors.New("RESUMER_PERSONA_API_KEY: required (or RESUMER_PERSONA_API_KEY_FILE)")
	}
	limiter, err := state.NewRateLimiter(rdb, state.RateLimiterOptions{
		Prefix: cfg.RedisPrefix,
		Limit:  cfg.PersonaRate,
		Window: time.Minute,
		Logger: logger,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("persona rate limiter: %w", err)
	}
	client, err := persona.NewClient(persona.ClientOptions{
		BaseURL:    cfg.PersonaAPIURL,
		APIKey:     cfg.PersonaAPIKey,
		Version:    cfg.PersonaVersion,
		Limiter:    limiter,
		Logger:     logger.With("component", "persona"),
		Registerer: reg,
	})
	return client, limiter, err
}

// newScheduler builds the notify role: the reminder channels, the link mode and the scheduler
// over the state store. Every missing or contradictory setting is an error naming it.
func newScheduler(cfg *config, rdb redis.UniversalClient, logger *slog.Logger, reg prometheus.Registerer) (*notify.Scheduler, error) {
	store, err := state.New(rdb, stateConfig(cfg, reg))
	if err != nil {
		return nil, err
	}
	channels, err := newChannels(cfg, logger, reg)
	if err != nil {
		return nil, err
	}
	holdout := notify.Holdout{Percent: cfg.HoldoutPercent, Salt: cfg.HoldoutSalt}
	if holdout.Percent > 0 && holdout.Salt == "" {
		return nil, errors.New("RESUMER_HOLDOUT_SALT: required when RESUMER_HOLDOUT_PERCENT is above 0 (or RESUMER_HOLDOUT_SALT_FILE)")
	}
	opts := notify.SchedulerOptions{
		Holdout:          holdout,
		Brands:           cfg.Brands,
		Store:            store,
		Channels:         channels,
		Stages:           cfg.RemindBefore,
		MinRemaining:     cfg.MinRemaining,
		MaxAge:           maxAgeOption(cfg.ResumeMaxAge),
		MaxAgeByTemplate: cfg.ResumeMaxAgeByTmpl,
		Interval:         cfg.NotifyInterval,
		Lease:            cfg.NotifyLease,
		Concurrency:      cfg.NotifyConcurrency,
		LinkMode:         cfg.LinkMode,
		HostedFlowURL:    cfg.HostedFlowURL,
		RedirectURI:      cfg.RedirectURI,
		Logger:           logger,
		Registerer:       reg,
	}
	if cfg.LinkMode == notify.LinkRedirect {
		signer, err := redirectSigner(cfg)
		if err != nil {
			return nil, err
		}
		opts.Redirect = signer
	} else {
		client, limiter, err := newPersonaClientLimiter(cfg, rdb, logger, reg)
		if err != nil {
			return nil, err
		}
		opts.Persona = client
		opts.Budget = limiter
	}
	if cfg.RecheckAfter > 0 {
		if err := setRecheck(cfg, rdb, logger, reg, &opts); err != nil {
			return nil, err
		}
	}
	return notify.NewScheduler(opts)
}

// redirectSigner builds the signer of /r/ links from RESUMER_PUBLIC_URL and RESUMER_LINK_SECRET.
func redirectSigner(cfg *config) (*link.Signer, error) {
	if cfg.PublicURL == "" {
		return nil, errors.New("RESUMER_PUBLIC_URL: required for redirect links")
	}
	if len(cfg.LinkSecret) == 0 {
		return nil, errors.New("RESUMER_LINK_SECRET: required for redirect links")
	}
	s := &link.Signer{Secret: cfg.LinkSecret, PublicURL: cfg.PublicURL}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("RESUMER_LINK_SECRET: %w", err)
	}
	return s, nil
}

// newAPIServer builds the api role: the resume API and, when redirect links are configured,
// the /r/ endpoint. The Persona client is shared with nothing else in the role, but its
// limiter is shared with every replica through Redis.
func newAPIServer(cfg *config, rdb redis.UniversalClient, logger *slog.Logger, reg prometheus.Registerer) (*api.Server, error) {
	store, err := state.New(rdb, stateConfig(cfg, reg))
	if err != nil {
		return nil, err
	}
	client, err := newPersonaClient(cfg, rdb, logger, reg)
	if err != nil {
		return nil, err
	}
	opts := api.Options{
		Store:            store,
		Persona:          client,
		Keys:             cfg.APIKeys,
		MinRemaining:     cfg.ResumeMinRemaining,
		ExpiredWithin:    resumeExpiredWithin(cfg),
		MintLimit:        cfg.ResumeMintLimit,
		MintWindow:       cfg.ResumeMintWindow,
		KeyRate:          cfg.APIKeyRate,
		ResumeTimeout:    cfg.ResumeTimeout,
		MaxAge:           maxAgeOption(cfg.ResumeMaxAge),
		MaxAgeByTemplate: cfg.ResumeMaxAgeByTmpl,
		Fallbacks:        cfg.FallbackTemplates,
		CurrentVersions:  currentVersions(cfg, client),
		HostedFlowURL:    cfg.HostedFlowURL,
		RedirectURI:      cfg.RedirectURI,
		SingleUseLinks:   cfg.LinkSingleUse,
		Brands:           cfg.Brands,
		Logger:           logger,
		Registerer:       reg,
	}
	if cfg.PublicURL != "" || len(cfg.LinkSecret) > 0 || cfg.LinkMode == notify.LinkRedirect {
		if opts.Redirect, err = redirectSigner(cfg); err != nil {
			return nil, err
		}
	}
	return api.New(opts)
}

// maxAgeOption maps RESUMER_RESUME_MAX_AGE to api.Options.MaxAge: 0 in the setting turns the
// check off, which the option spells as a negative value.
func maxAgeOption(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
