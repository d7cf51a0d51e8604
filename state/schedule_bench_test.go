package state

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
)

// BenchmarkClaimDue measures one ClaimDue (16 shards, one pipelined round trip) that claims
// 1,000 due inquiries while 10k or 100k pending inquiries are tracked. DESIGN.md decision 4:
// the cost follows the due work, so both figures should be close. Every iteration moves the
// claim time past the previous lease, so the same 1,000 inquiries are due again.
//
//	go test ./state -run '^$' -bench BenchmarkClaimDue -benchtime 200x
func BenchmarkClaimDue(b *testing.B) {
	const due = 1000
	for _, tracked := range []int{10_000, 100_000} {
		b.Run("tracked="+strconv.Itoa(tracked/1000)+"k", func(b *testing.B) {
			s, _ := privateStore(b)
			now := time.Now().UTC().Truncate(time.Millisecond)
			events := make([]*persona.Event, 0, tracked)
			for n := range tracked {
				x := now.Add(30 * 24 * time.Hour) // not due for weeks
				if n < due {
					x = now.Add(30 * time.Minute) // both stages due
				}
				id := personaID("inq", n)
				events = append(events, &persona.Event{
					ID: personaID("evt", n), Name: "inquiry.started", CreatedAt: now.Add(-time.Hour),
					InquiryID: id, PayloadType: "inquiry",
					Inquiry: &persona.Inquiry{
						ID: id, Status: persona.StatusPending, ReferenceID: "user-" + strconv.Itoa(n),
						TemplateID: "itmpl_Ygs16MKTkA6obnF8C3Rb17dm", CreatedAt: now.Add(-time.Hour),
						StartedAt: now.Add(-time.Hour), ExpiresAt: x,
						EmailAddress: "jane.doe" + strconv.Itoa(n) + "@example.com", NameFirst: "Jane",
					},
				})
			}
			applyAll(b, s, events, 500)
			ctx := context.Background()
			const lease = time.Millisecond
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				claims, err := s.ClaimDue(ctx, now.Add(time.Duration(i)*lease), lease, due)
				if err != nil {
					b.Fatal(err)
				}
				if len(claims) != due {
					b.Fatalf("claimed %d, want %d", len(claims), due)
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i*due), "ns/claim")
		})
	}
}
