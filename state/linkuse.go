package state

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// kindLinkUse keys remember single-use /r/ links that were used:
// <prefix>:{<shard>}:lu:<link id>, in the inquiry's shard, expiring with the link.
const kindLinkUse = "lu"

// linkUse is the key that marks a link of inquiryID as used.
func (k keys) linkUse(inquiryID, linkID string) string {
	return k.shardPrefix(k.shard(inquiryID)) + kindLinkUse + ":" + linkID
}

// UseLink marks the single-use link linkID (link.ID of the token) of inquiryID as used until
// until (the link's own expiry; at least one second from now is kept) and reports whether
// this call was the first to use it. Any number of replicas racing on one link: exactly one
// gets true. The error is Redis' (nothing was marked) or says linkID is empty.
func (s *Store) UseLink(ctx context.Context, inquiryID, linkID string, until time.Time) (bool, error) {
	if linkID == "" {
		return false, errors.New("use link: empty link id")
	}
	ttl := max(until.Sub(s.now()), time.Second)
	ok, err := s.client.SetNX(ctx, s.keys.linkUse(inquiryID, linkID), 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("use link of %s: %w", inquiryID, err)
	}
	return ok, nil
}

// LinkUsed reports whether UseLink marked linkID of inquiryID as used. The error is Redis'.
func (s *Store) LinkUsed(ctx context.Context, inquiryID, linkID string) (bool, error) {
	n, err := s.client.Exists(ctx, s.keys.linkUse(inquiryID, linkID)).Result()
	if err != nil {
		return false, fmt.Errorf("read link use of %s: %w", inquiryID, err)
	}
	return n > 0, nil
}

// ReleaseLink forgets that linkID of inquiryID was used, so a use that failed before the user
// got anything (Persona did not mint) does not burn the link. The error is Redis'.
func (s *Store) ReleaseLink(ctx context.Context, inquiryID, linkID string) error {
	if err := s.client.Del(ctx, s.keys.linkUse(inquiryID, linkID)).Err(); err != nil {
		return fmt.Errorf("release link of %s: %w", inquiryID, err)
	}
	return nil
}
