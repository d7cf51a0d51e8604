package state

import (
	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/persona"
)

// RawApply returns what ApplyBatch sends to Redis for ev: the apply script and the KEYS and
// ARGV of its EVALSHA, built as ApplyBatch builds them, with the store's clock read now. It
// exists so that a benchmark can send the very same applies to Redis without the store's Go
// code around them (the raw apply baseline of internal/bench, and its fast fill of a large
// tracked set); the service itself only calls ApplyBatch. Running the script changes Redis
// exactly as applying ev does. The error wraps ErrInvalidEvent for an event ApplyBatch would
// refuse.
func (s *Store) RawApply(ev *persona.Event) (script *redis.Script, keys []string, args []any, err error) {
	c, err := s.applyCall(ev, s.now().UnixMilli())
	if err != nil {
		return nil, nil, nil, err
	}
	return s.apply, c.keys, c.args, nil
}
