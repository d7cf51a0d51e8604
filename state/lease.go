package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrSingletonLost is wrapped by Store.RenewLease and Store.SaveCheckpoint when the named
// lease is no longer held by the token: it expired and another replica may have taken it.
// The holder must stop the work the lease guards.
var ErrSingletonLost = errors.New("singleton lease lost")

// Keys of singleton work (reconciliation): <prefix>:{singleton}:lease:<name> holds the lease
// token, <prefix>:{singleton}:checkpoint:<name> a hash of the work's checkpoint. Both are in
// one Redis Cluster slot, so a fenced checkpoint write is one script.
func (k keys) lease(name string) string      { return k.prefix + ":{singleton}:lease:" + name }
func (k keys) checkpoint(name string) string { return k.prefix + ":{singleton}:checkpoint:" + name }

// acquireLeaseScript takes or renews a lease. KEYS[1] lease; ARGV[1] token, ARGV[2] ttl ms.
// Returns 1 when the token holds the lease afterwards, else 0.
var acquireLeaseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// releaseLeaseScript deletes the lease when the token holds it. KEYS[1] lease; ARGV[1] token.
var releaseLeaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
`)

// saveCheckpointScript writes checkpoint fields when the token holds the lease.
// KEYS[1] lease, KEYS[2] checkpoint hash; ARGV[1] token, ARGV[2..] field, value pairs
// (an empty value deletes the field). Returns 1 when written, 0 when the lease is lost.
var saveCheckpointScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[2], ARGV[i])
  else
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  end
end
return 1
`)

// AcquireLease takes the lease called name for token for ttl, or renews it when token already
// holds it, so that one replica at a time does the work it guards. It reports whether token
// holds the lease now; false means another holder's lease is running. The error is Redis'
// error, or says ttl is under a millisecond.
func (s *Store) AcquireLease(ctx context.Context, name, token string, ttl time.Duration) (bool, error) {
	if ttl < time.Millisecond {
		return false, fmt.Errorf("acquire lease %s: ttl %v under 1ms", name, ttl)
	}
	n, err := acquireLeaseScript.Run(ctx, s.client, []string{s.keys.lease(name)}, token, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return n == 1, nil
}

// RenewLease extends token's lease called name to ttl from now. The error wraps ErrSingletonLost
// when token does not hold it, or is Redis' error.
func (s *Store) RenewLease(ctx context.Context, name, token string, ttl time.Duration) error {
	ok, err := s.AcquireLease(ctx, name, token, ttl)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("renew lease %s: %w", name, ErrSingletonLost)
	}
	return nil
}

// ReleaseLease ends token's lease called name, so another replica may take it at once; it
// does nothing when token does not hold it. The error is Redis' error.
func (s *Store) ReleaseLease(ctx context.Context, name, token string) error {
	if err := releaseLeaseScript.Run(ctx, s.client, []string{s.keys.lease(name)}, token).Err(); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

// Checkpoint returns the fields of the checkpoint called name (empty when none was saved).
// The error is Redis' error.
func (s *Store) Checkpoint(ctx context.Context, name string) (map[string]string, error) {
	m, err := s.client.HGetAll(ctx, s.keys.checkpoint(name)).Result()
	if err != nil {
		return nil, fmt.Errorf("read checkpoint %s: %w", name, err)
	}
	return m, nil
}

// SaveCheckpoint sets fields of the checkpoint called name (an empty value deletes the
// field), fenced by the lease of the same name: it writes only while token holds that lease,
// so a replica whose lease ran out cannot move the checkpoint of the one that took over. The
// error wraps ErrSingletonLost when token does not hold the lease, or is Redis' error.
func (s *Store) SaveCheckpoint(ctx context.Context, name, token string, fields map[string]string) error {
	args := make([]any, 0, 1+2*len(fields))
	args = append(args, token)
	for k, v := range fields {
		args = append(args, k, v)
	}
	n, err := saveCheckpointScript.Run(ctx, s.client, []string{s.keys.lease(name), s.keys.checkpoint(name)}, args...).Int()
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("save checkpoint %s: %w", name, ErrSingletonLost)
	}
	return nil
}
