package mailcatch

import (
	"crypto/subtle"
	"io"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// backend creates a session per connection.
type backend struct{ c *Catcher }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{c: b.c}, nil }

// session is one SMTP connection's state.
type session struct {
	c      *Catcher
	authed bool
	fail   bool // this transaction gets 451 at RCPT TO
	utf8   bool // MAIL FROM carried SMTPUTF8
	from   string
	to     []string
}

// errNotASCII is a real server's answer to a non-ASCII address without SMTPUTF8.
var errNotASCII = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7},
	Message: "non-ASCII address without SMTPUTF8"}

// ascii reports whether s is 7-bit.
func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

var _ smtp.AuthSession = (*session)(nil)

// AuthMechanisms offers PLAIN when credentials are configured, nothing otherwise.
func (s *session) AuthMechanisms() []string {
	if s.c.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

// Auth checks PLAIN credentials against the configured ones.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if s.c.opts.Username == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, username, password string) error {
		userOK := subtle.ConstantTimeCompare([]byte(username), []byte(s.c.opts.Username)) == 1
		passOK := subtle.ConstantTimeCompare([]byte(password), []byte(s.c.opts.Password)) == 1
		if !userOK || !passOK {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.c.opts.Username != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	utf8 := opts != nil && opts.UTF8
	if !s.c.opts.SMTPUTF8 && (utf8 || !ascii(from)) {
		return errNotASCII
	}
	s.from, s.utf8 = from, utf8
	s.fail = s.c.takeFailure()
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !ascii(to) && !s.utf8 {
		return errNotASCII
	}
	if s.fail {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
			Message: "<" + to + ">: temporarily unable to accept mail, try again later"}
	}
	if f := s.c.opts.RejectRecipient; f != nil && f(to) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: "<" + to + ">: mailbox unavailable"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := parseMessage(s.from, s.to, raw, time.Now())
	m.SMTPUTF8 = s.utf8
	s.c.store(m)
	if d := s.c.opts.DataDelay; d > 0 {
		time.Sleep(d)
	}
	return nil
}

func (s *session) Reset() {
	s.from, s.to, s.fail, s.utf8 = "", nil, false, false
}

func (s *session) Logout() error { return nil }
