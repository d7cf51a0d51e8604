package bench

import (
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/persona"
)

// inquiryFacts are the facts of one generated inquiry: what Persona would send about it.
type inquiryFacts struct {
	n           int
	id          string
	referenceID string
	templateID  string
	accountID   string
	email       string
	nameFirst   string
	nameLast    string
	createdAt   time.Time
	startedAt   time.Time
	expiresAt   time.Time
}

// generatedEvent is one Persona webhook event of a corpus: its envelope facts and, when the
// scenario needs one, the exact JSON body Persona would POST.
type generatedEvent struct {
	ID        string
	Name      string
	InquiryID string
	CreatedAt time.Time
	Status    persona.Status
	Body      []byte
	facts     *inquiryFacts
}

// personaID imitates Persona's ids: a type prefix and 24 base58 characters, unique per
// (seed, n).
func personaID(kind string, seed uint64, n int) string {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	b := make([]byte, 0, len(kind)+25)
	b = append(b, kind...)
	b = append(b, '_')
	x := (uint64(n)+1)*0x9E3779B97F4A7C15 ^ seed
	for range 24 {
		x ^= x >> 29
		x *= 0xBF58476D1CE4E5B9
		x ^= x >> 32
		b = append(b, alphabet[x%uint64(len(alphabet))])
	}
	return string(b)
}

// newFacts returns inquiry n of the generator seeded with seed, created at base (minus a
// little) and expiring at expiresAt.
func newFacts(seed uint64, n int, base, expiresAt time.Time) *inquiryFacts {
	created := base.Add(-time.Duration(n%600) * time.Second).Truncate(time.Millisecond)
	return &inquiryFacts{
		n:           n,
		id:          personaID("inq", seed, n),
		referenceID: "user-" + strconv.Itoa(1_000_000+n),
		templateID:  "itmpl_Ygs16MKTkA6obnF8C3Rb17dm",
		accountID:   personaID("act", seed^0xA5A5, n),
		email:       "jane.doe" + strconv.Itoa(n) + "@example.com",
		nameFirst:   firstNames[n%len(firstNames)],
		nameLast:    lastNames[(n/7)%len(lastNames)],
		createdAt:   created,
		startedAt:   created.Add(90 * time.Second),
		expiresAt:   expiresAt.Truncate(time.Millisecond),
	}
}

var (
	firstNames = []string{"Jane", "Amara", "Luis", "Mei", "Oskar", "Priya", "Tomasz", "Yara", "Kwame", "Ingrid"}
	lastNames  = []string{"Doe", "Okafor", "García", "Chen", "Lindqvist", "Raman", "Kowalski", "Haddad", "Mensah", "Berg"}
	userAgents = []string{
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
	}
)

// lifecycle returns the two events that make an inquiry pending, as Persona sends them:
// inquiry.created, then inquiry.started a little later, each with the full inquiry payload.
// With bodies set, each event carries its JSON body.
func (f *inquiryFacts) lifecycle(seed uint64, bodies bool) [2]generatedEvent {
	evs := [2]generatedEvent{
		{ID: personaID("evt", seed, 2*f.n), Name: "inquiry.created", InquiryID: f.id,
			CreatedAt: f.createdAt, Status: persona.StatusCreated, facts: f},
		{ID: personaID("evt", seed, 2*f.n+1), Name: "inquiry.started", InquiryID: f.id,
			CreatedAt: f.startedAt, Status: persona.StatusPending, facts: f},
	}
	if bodies {
		for i := range evs {
			evs[i].Body = evs[i].appendBody(nil)
		}
	}
	return evs
}

// arena holds the bodies of a corpus in a few large pointer-free chunks rather than one
// allocation each, so that the load generator's data costs the garbage collector of the
// process it shares with the receiver next to nothing.
type arena struct{ chunk []byte }

// add appends a body built by build to the arena and returns it (capacity capped to its
// length).
func (a *arena) add(build func([]byte) []byte) []byte {
	const chunkSize = 16 << 20
	if cap(a.chunk)-len(a.chunk) < 8<<10 {
		a.chunk = make([]byte, 0, chunkSize)
	}
	start := len(a.chunk)
	a.chunk = build(a.chunk)
	return a.chunk[start:len(a.chunk):len(a.chunk)]
}

// corpusTemplateVersion is the inquiry-template-version of every generated inquiry.
const corpusTemplateVersion = "itmplv_7Ab3xQe9Lp2Vn5Rk8Ws1Dz4F"

// event returns the persona.Event that persona.ParseEvent reads from the event's body.
func (g *generatedEvent) event() *persona.Event {
	f := g.facts
	inq := &persona.Inquiry{
		ID: f.id, Status: g.Status, ReferenceID: f.referenceID, TemplateID: f.templateID,
		TemplateVersionID: corpusTemplateVersion, AccountID: f.accountID, CreatedAt: f.createdAt, ExpiresAt: f.expiresAt, UpdatedAt: g.CreatedAt,
		EmailAddress: f.email, NameFirst: f.nameFirst,
	}
	if g.Status != persona.StatusCreated {
		inq.StartedAt = f.startedAt
	}
	return &persona.Event{
		ID: g.ID, Name: g.Name, CreatedAt: g.CreatedAt, TimeSource: persona.TimeFromEvent, InquiryID: f.id,
		PayloadType: "inquiry", Inquiry: inq,
	}
}

// message returns the JetStream message the webhook receiver publishes for this event: the
// raw body with the same subject and headers.
func (g *generatedEvent) message(receivedAt time.Time) *nats.Msg {
	return eventstream.Message(&persona.Event{ID: g.ID, Name: g.Name, CreatedAt: g.CreatedAt,
		TimeSource: persona.TimeFromEvent, InquiryID: g.InquiryID}, g.Body, receivedAt)
}

// jsonTime formats t as Persona does, or null for the zero time.
func jsonTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	return append(b, '"')
}

// appendBody appends the event's JSON body: Persona's kebab-case event envelope around a full
// inquiry payload (attributes, behaviors, fields, relationships and an included session),
// 2 to 4 KB depending on the inquiry.
func (g *generatedEvent) appendBody(b []byte) []byte {
	f := g.facts
	started := f.startedAt
	next := "verification_government_id"
	if g.Status == persona.StatusCreated {
		started = time.Time{}
		next = "start"
	}
	verifications := f.n % 4
	sessions := 1 + f.n%2
	tags := f.n % 3
	b = append(b, `{"data":{"type":"event","id":"`...)
	b = append(b, g.ID...)
	b = append(b, `","attributes":{"name":"`...)
	b = append(b, g.Name...)
	b = append(b, `","created-at":`...)
	b = jsonTime(b, g.CreatedAt)
	b = append(b, `,"redacted-at":null,"payload":{"data":{"type":"inquiry","id":"`...)
	b = append(b, f.id...)
	b = append(b, `","attributes":{"status":"`...)
	b = append(b, g.Status...)
	b = append(b, `","reference-id":"`...)
	b = append(b, f.referenceID...)
	b = fmt.Appendf(b, `","note":null,"behaviors":{"request-spoof-attempts":0,"user-agent-spoof-attempts":0,`+
		`"distraction-events":%d,"hesitation-baseline":%d,"hesitation-count":%d,"hesitation-time":%d,`+
		`"shortcut-copies":0,"shortcut-pastes":%d,"autofill-cancels":0,"autofill-starts":1,"devtools-open":false,`+
		`"completion-time":null,"hesitation-percentage":%d.%d,"behavior-threat-level":"low"},"tags":[%s],`+
		`"creator":"API","reviewer-comment":null,"updated-at":`,
		f.n%5, 10+f.n%9, f.n%4, 4000+f.n%9000, f.n%2, 10+f.n%60, f.n%10, []string{``, `"returning"`, `"returning","mobile"`}[tags])
	b = jsonTime(b, g.CreatedAt)
	b = append(b, `,"created-at":`...)
	b = jsonTime(b, f.createdAt)
	b = append(b, `,"started-at":`...)
	b = jsonTime(b, started)
	b = append(b, `,"expires-at":`...)
	b = jsonTime(b, f.expiresAt)
	b = append(b, `,"completed-at":null,"failed-at":null,"marked-for-review-at":null,"decisioned-at":null,`+
		`"expired-at":null,"redacted-at":null,"previous-step-name":"start","next-step-name":"`...)
	b = append(b, next...)
	b = append(b, `","name-first":null,"name-middle":null,"name-last":"`...)
	b = append(b, f.nameLast...)
	b = append(b, `","birthdate":null,"address-street-1":null,"address-street-2":null,"address-city":null,`+
		`"address-subdivision":null,"address-postal-code":null,"address-country-code":"US","phone-number":null,`+
		`"email-address":null,"identification-number":null,"fields":{"name-first":{"type":"string","value":"`...)
	b = append(b, f.nameFirst...)
	b = append(b, `"},"name-middle":{"type":"string","value":null},"name-last":{"type":"string","value":"`...)
	b = append(b, f.nameLast...)
	b = append(b, `"},"birthdate":{"type":"date","value":null},"address-street-1":{"type":"string","value":null},`+
		`"address-city":{"type":"string","value":null},"address-country-code":{"type":"string","value":"US"},`+
		`"phone-number":{"type":"string","value":null},"selected-country-code":{"type":"string","value":"US"},`+
		`"selected-id-class":{"type":"string","value":"dl"},"email-address":{"type":"string","value":"`...)
	b = append(b, f.email...)
	b = append(b, `"}}},"relationships":{"account":{"data":{"type":"account","id":"`...)
	b = append(b, f.accountID...)
	b = append(b, `"}},"inquiry-template":{"data":{"type":"inquiry-template","id":"`...)
	b = append(b, f.templateID...)
	b = append(b, `"}},"inquiry-template-version":{"data":{"type":"inquiry-template-version","id":"`+corpusTemplateVersion+`"}},`+
		`"transaction":{"data":null},"reviewer":{"data":null},"reports":{"data":[]},"verifications":{"data":[`...)
	for i := range verifications {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":"verification/government-id","id":"`...)
		b = append(b, personaID("ver", uint64(i), f.n)...)
		b = append(b, `"}`...)
	}
	b = append(b, `]},"sessions":{"data":[`...)
	for i := range sessions {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":"inquiry-session","id":"`...)
		b = append(b, personaID("iqse", uint64(i), f.n)...)
		b = append(b, `"}`...)
	}
	b = append(b, `]},"documents":{"data":[]},"selfies":{"data":[]}}},"included":[`...)
	for i := range 1 { // the newest session
		i += sessions - 1
		b = append(b, `{"type":"inquiry-session","id":"`...)
		b = append(b, personaID("iqse", uint64(i), f.n)...)
		b = append(b, `","attributes":{"status":"active","created-at":`...)
		b = jsonTime(b, f.createdAt)
		b = append(b, `,"started-at":`...)
		b = jsonTime(b, started)
		b = fmt.Appendf(b, `,"expired-at":null,"ip-address":"203.0.%d.%d","user-agent":"%s","os-name":"iOS",`+
			`"os-full-version":"17.2","device-type":"smartphone","device-name":"iPhone","browser-name":"Mobile Safari",`+
			`"browser-full-version":"17.2","mobile-sdk-name":null,"mobile-sdk-full-version":null,"is-proxy":false,`+
			`"is-tor":false,"is-datacenter":false,"is-vpn":false,"threat-level":"low","country-code":"US",`+
			`"country-name":"United States","region-code":"CA","region-name":"California","latitude":37.77%02d,`+
			`"longitude":-122.41%02d},"relationships":{"inquiry":{"data":{"type":"inquiry","id":"`,
			f.n%250, (f.n/250)%250, userAgents[(f.n+i)%len(userAgents)], f.n%100, (f.n/3)%100)
		b = append(b, f.id...)
		b = append(b, `"}}}}`...)
	}
	return append(b, `]}}}}`...)
}

// corpus generates the lifecycle events of inquiries [0, inquiries) of seed, in order
// (created, started, created, started, ...), with bodies when asked.
func corpus(seed uint64, inquiries int, base time.Time, bodies bool) []generatedEvent {
	out := make([]generatedEvent, 0, 2*inquiries)
	var a arena
	for n := range inquiries {
		f := newFacts(seed, n, base, base.Add(24*time.Hour))
		evs := f.lifecycle(seed, false)
		for i := range evs {
			if bodies {
				evs[i].Body = a.add(evs[i].appendBody)
			}
			out = append(out, evs[i])
		}
	}
	return out
}
