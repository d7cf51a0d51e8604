package mailcatch

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
)

// maxDepth bounds how deeply nested multipart messages are parsed.
const maxDepth = 5

// Message is one caught message: the envelope, a few decoded headers and the decoded text
// and HTML bodies.
type Message struct {
	// From and To are the envelope (MAIL FROM, RCPT TO).
	From string
	To   []string
	// SMTPUTF8 says MAIL FROM carried the SMTPUTF8 parameter (RFC 6531).
	SMTPUTF8 bool
	// Header is the parsed top-level header, values as they were sent (not RFC 2047 decoded).
	Header mail.Header
	// Subject is the Subject header, RFC 2047 decoded.
	Subject string
	// MessageID is the Message-ID header, angle brackets included.
	MessageID string
	// TextBody and HTMLBody are the first text/plain and text/html parts (or the single
	// body), transfer encoding (quoted-printable, base64) decoded and CRLF turned into LF.
	TextBody string
	HTMLBody string
	// Raw is the message as received.
	Raw []byte
	// Received is when the catcher got it.
	Received time.Time
	// ParseErr says why the message could not be parsed completely, or is empty. The message
	// is kept either way.
	ParseErr string
}

// parseMessage decodes raw as far as it can.
func parseMessage(from string, to []string, raw []byte, received time.Time) Message {
	m := Message{From: from, To: append([]string(nil), to...), Raw: raw, Received: received}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		m.ParseErr = fmt.Sprintf("read header: %v", err)
		return m
	}
	m.Header = msg.Header
	dec := new(mime.WordDecoder)
	if s, err := dec.DecodeHeader(msg.Header.Get("Subject")); err == nil {
		m.Subject = s
	} else {
		m.Subject = msg.Header.Get("Subject")
	}
	m.MessageID = msg.Header.Get("Message-ID")
	if err := m.readBody(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, 0); err != nil {
		m.ParseErr = err.Error()
	}
	return m
}

// readBody fills TextBody and HTMLBody from a body of the given type and encoding, descending
// into multipart bodies.
func (m *Message) readBody(contentType, encoding string, body io.Reader, depth int) error {
	if contentType == "" {
		contentType = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("parse content type: %w", err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		if depth >= maxDepth {
			return fmt.Errorf("read body: multipart nested deeper than %d", maxDepth)
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextPart decodes quoted-printable itself and drops the header.
			p, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read part: %w", err)
			}
			if err := m.readBody(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, depth+1); err != nil {
				return err
			}
		}
	}
	var target *string
	switch mediaType {
	case "text/plain":
		target = &m.TextBody
	case "text/html":
		target = &m.HTMLBody
	default:
		return nil
	}
	if *target != "" {
		return nil // keep the first one
	}
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body) // skips line breaks itself
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("decode %s body: %w", mediaType, err)
	}
	*target = strings.ReplaceAll(string(b), "\r\n", "\n")
	return nil
}
