package state

import (
	"context"
	"fmt"
	"strconv"
)

// templateRef is a record's template code in its shard: codes are per shard and never reused
// (lib.lua, intern), so a (shard, code) pair names the same template id forever.
type templateRef struct {
	shard int
	code  int64
}

// nameTemplates fills the TemplateID of claims from the shards' template hashes: one
// pipelined HGET per (shard, code) not seen before, then from the Store's cache. A failure
// leaves the TemplateIDs it could not read empty (the brand then falls back to the reference
// id or the default) and is returned for the caller to log; the claims stay valid.
func (s *Store) nameTemplates(ctx context.Context, claims []Claim) error {
	var missing []templateRef
	seen := map[templateRef]bool{}
	for i := range claims {
		ref := claims[i].template
		if ref.code == 0 {
			continue
		}
		if _, ok := s.templateNames.Load(ref); !ok && !seen[ref] {
			seen[ref] = true
			missing = append(missing, ref)
		}
	}
	var err error
	if len(missing) > 0 {
		pipe := s.client.Pipeline()
		cmds := make([]interface{ Result() (string, error) }, len(missing))
		for i, ref := range missing {
			cmds[i] = pipe.HGet(ctx, s.keys.templates(ref.shard), "#"+strconv.FormatInt(ref.code, 10))
		}
		_, err = pipe.Exec(ctx)
		for i, ref := range missing {
			if name, e := cmds[i].Result(); e == nil && name != "" {
				s.templateNames.Store(ref, name)
			}
		}
		if err != nil {
			err = fmt.Errorf("read template ids of claims: %w", err)
		}
	}
	for i := range claims {
		if name, ok := s.templateNames.Load(claims[i].template); ok {
			claims[i].TemplateID = name.(string)
		}
	}
	return err
}
