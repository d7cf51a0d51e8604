package notify

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Holdout decides which inquiries are held out of reminders, to measure what reminders
// change (the uplift): a held-out inquiry is tracked and scheduled like any other, but when
// its reminder is due the send is skipped and recorded as OutcomeHeldOut. The choice is a
// deterministic hash of the inquiry id with a per-deployment salt, so every replica and every
// stage agrees, and nobody can pick the held-out set from the ids alone.
type Holdout struct {
	// Percent is the share of inquiries held out, 0 to 100 in steps of 0.01 (0: none).
	Percent float64
	// Salt is mixed into the hash; keep it fixed for a deployment, or the held-out set moves.
	Salt string
}

// Validate says whether h can be used: Percent within 0..100 and, when above 0, a salt.
func (h Holdout) Validate() error {
	if h.Percent < 0 || h.Percent > 100 || h.Percent != h.Percent {
		return fmt.Errorf("holdout percent %v: want 0 to 100", h.Percent)
	}
	if h.Percent > 0 && h.Salt == "" {
		return fmt.Errorf("holdout of %v%%: no salt", h.Percent)
	}
	return nil
}

// HeldOut reports whether inquiryID is held out: the first 8 bytes of SHA-256(salt, 0x00,
// id), modulo 10,000, below Percent × 100.
func (h Holdout) HeldOut(inquiryID string) bool {
	if h.Percent <= 0 {
		return false
	}
	sum := sha256.Sum256([]byte(h.Salt + "\x00" + inquiryID))
	return binary.BigEndian.Uint64(sum[:8])%10000 < uint64(h.Percent*100+0.5)
}
