package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/resumer/resumer/webhook"
)

// webhookPoster POSTs signed webhooks to one loopback receiver over keep-alive HTTP/1.1
// connections, one connection per request in flight. It is the load generator's client: on
// two shared cores, net/http's client (two goroutines and a hand-off per request) would take
// the CPU the receiver is measured with, so requests are written as bytes in one write and
// answers read with a bufio.Reader. It speaks only what the receiver answers: a status line,
// headers and a Content-Length body.
type webhookPoster struct {
	host, path string
	secret     []byte
	timeout    time.Duration
	mu         sync.Mutex
	idle       []*posterConn
}

type posterConn struct {
	c   net.Conn
	r   *bufio.Reader
	buf []byte
}

func newWebhookPoster(rawURL string, secret []byte) (*webhookPoster, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "http" {
		return nil, fmt.Errorf("webhook poster: need an http:// URL, got %q", rawURL)
	}
	return &webhookPoster{host: u.Host, path: u.RequestURI(), secret: secret, timeout: 10 * time.Second}, nil
}

// post signs body now and POSTs it; anything but 200 is an error.
func (p *webhookPoster) post(ctx context.Context, body []byte) error {
	return p.postSigned(ctx, body, webhook.Sign(body, p.secret, time.Now()))
}

// postSigned POSTs body with the Persona-Signature header value signature (made by
// webhook.Sign within the receiver's tolerance); anything but 200 is an error.
func (p *webhookPoster) postSigned(ctx context.Context, body []byte, signature string) error {
	pc, err := p.conn(ctx)
	if err != nil {
		return err
	}
	status, err := pc.roundTrip(ctx, p, body, signature)
	if err != nil {
		pc.c.Close()
		return err
	}
	p.mu.Lock()
	p.idle = append(p.idle, pc)
	p.mu.Unlock()
	if status != 200 {
		return fmt.Errorf("receiver answered %d", status)
	}
	return nil
}

func (p *webhookPoster) conn(ctx context.Context) (*posterConn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		pc := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return pc, nil
	}
	p.mu.Unlock()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.host)
	if err != nil {
		return nil, fmt.Errorf("dial receiver: %w", err)
	}
	return &posterConn{c: c, r: bufio.NewReaderSize(c, 4096), buf: make([]byte, 0, 8192)}, nil
}

// close closes the idle connections.
func (p *webhookPoster) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.idle {
		pc.c.Close()
	}
	p.idle = nil
}

// roundTrip writes one request and reads its answer, returning the status code.
func (pc *posterConn) roundTrip(ctx context.Context, p *webhookPoster, body []byte, signature string) (int, error) {
	deadline := time.Now().Add(p.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	pc.c.SetDeadline(deadline)
	b := pc.buf[:0]
	b = append(b, "POST "...)
	b = append(b, p.path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, p.host...)
	b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n"+webhook.SignatureHeader+": "...)
	b = append(b, signature...)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	pc.buf = b
	if _, err := pc.c.Write(b); err != nil {
		return 0, err
	}
	line, err := pc.r.ReadSlice('\n')
	if err != nil {
		return 0, fmt.Errorf("read status line: %w", err)
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length := -1
	for {
		line, err := pc.r.ReadSlice('\n')
		if err != nil {
			return 0, fmt.Errorf("read header: %w", err)
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return 0, fmt.Errorf("bad Content-Length %q", v)
			}
		}
	}
	if length < 0 {
		return 0, errors.New("answer without Content-Length")
	}
	if _, err := pc.r.Discard(length); err != nil {
		return 0, fmt.Errorf("read body: %w", err)
	}
	return status, nil
}
