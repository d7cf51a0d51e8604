package notify

import (
	"testing"
	"time"
)

func TestTimeLeftInWords(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Hour, "less than a minute"},
		{0, "less than a minute"},
		{29 * time.Second, "less than a minute"},
		{30 * time.Second, "1 minute"},
		{time.Minute, "1 minute"},
		{90 * time.Second, "2 minutes"},
		{45 * time.Minute, "45 minutes"},
		{59*time.Minute + 29*time.Second, "59 minutes"},
		{59*time.Minute + 30*time.Second, "about 1 hour"},
		{time.Hour, "about 1 hour"},
		{time.Hour + 29*time.Minute, "about 1 hour"},
		{time.Hour + 30*time.Minute, "about 2 hours"},
		{5*time.Hour + 50*time.Minute, "about 6 hours"},
		{6 * time.Hour, "about 6 hours"},
		{24 * time.Hour, "about 24 hours"},
		{47 * time.Hour, "about 47 hours"},
		{48 * time.Hour, "about 2 days"},
		{80 * time.Hour, "about 3 days"},
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			if got := TimeLeftInWords(tt.d); got != tt.want {
				t.Errorf("TimeLeftInWords(%s) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

func TestParseStage(t *testing.T) {
	tests := []struct {
		in      string
		want    Stage
		wantErr bool
	}{
		{in: "6h", want: Stage{"6h", 6 * time.Hour}},
		{in: "1h", want: Stage{"1h", time.Hour}},
		{in: "60m", want: Stage{"1h", time.Hour}},
		{in: "90m", want: Stage{"90m", 90 * time.Minute}},
		{in: "1h30m", want: Stage{"90m", 90 * time.Minute}},
		{in: "45s", want: Stage{"45s", 45 * time.Second}},
		{in: "0h", wantErr: true},
		{in: "-1h", wantErr: true},
		{in: "1.5s", wantErr: true},
		{in: "six hours", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseStage(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseStage(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseStage(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if !tt.wantErr && got.String() != tt.want.Name {
				t.Errorf("String() = %q, want %q", got.String(), tt.want.Name)
			}
		})
	}
}

func TestReminderTimeLeft(t *testing.T) {
	exp := time.Date(2026, 1, 6, 10, 0, 0, 0, time.UTC)
	clock := exp.Add(-2 * time.Hour)
	r := &Reminder{ExpiresAt: exp}
	if got := r.TimeLeft(clock); got != 2*time.Hour {
		t.Errorf("TimeLeft without Now = %s, want 2h (the given clock)", got)
	}
	r.Now = exp.Add(-time.Hour)
	if got := r.TimeLeft(clock); got != time.Hour {
		t.Errorf("TimeLeft with Now = %s, want 1h (r.Now wins)", got)
	}
}

// TestTimeLeftInLocales checks the plural of every unit in every locale, and that an unknown
// locale falls back to English.
func TestTimeLeftInLocales(t *testing.T) {
	for _, tt := range []struct {
		locale string
		d      time.Duration
		want   string
	}{
		{"es", 10 * time.Second, "menos de un minuto"},
		{"es", time.Minute, "1 minuto"},
		{"es", 2 * time.Minute, "2 minutos"},
		{"es", time.Hour, "aproximadamente 1 hora"},
		{"es", 6 * time.Hour, "aproximadamente 6 horas"},
		{"es", 72 * time.Hour, "aproximadamente 3 días"},
		{"de", 10 * time.Second, "weniger als einer Minute"},
		{"de", time.Minute, "1 Minute"},
		{"de", 45 * time.Minute, "45 Minuten"},
		{"de", time.Hour, "etwa 1 Stunde"},
		{"de", 6 * time.Hour, "etwa 6 Stunden"},
		{"de", 48 * time.Hour, "etwa 2 Tagen"},
		{"en", 2 * time.Hour, "about 2 hours"},
		{"fr", time.Hour, "about 1 hour"},
	} {
		if got := TimeLeftIn(tt.locale, tt.d); got != tt.want {
			t.Errorf("TimeLeftIn(%s, %s) = %q, want %q", tt.locale, tt.d, got, tt.want)
		}
	}
	for _, l := range Locales() {
		if _, ok := phrasesByLocale[l]; !ok {
			t.Errorf("locale %s has no time phrases", l)
		}
	}
}
