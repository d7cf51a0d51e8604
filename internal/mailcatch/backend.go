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
	from   string
	to     []string
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

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.c.opts.Username != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	s.fail = s.c.takeFailure()
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
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
	s.c.store(parseMessage(s.from, s.to, raw, time.Now()))
	return nil
}

func (s *session) Reset() {
	s.from, s.to, s.fail = "", nil, false
}

func (s *session) Logout() error { return nil }
