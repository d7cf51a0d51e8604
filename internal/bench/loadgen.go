package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/webhook"
)

// loadgenJob is what the parent tells a load generator process (LoadgenMain) on its standard
// input: post the webhooks of the corpus file to URL, signed with Secret (Publish false), or
// publish them straight to Stream on NATSURL as the receiver would (Publish true: the raw
// baseline), Concurrency at a time, at most N of them and for at most Duration.
type loadgenJob struct {
	Publish     bool          `json:"publish,omitempty"`
	NATSURL     string        `json:"nats_url,omitempty"`
	Stream      string        `json:"stream,omitempty"`
	URL         string        `json:"url"`
	Secret      []byte        `json:"secret"`
	Corpus      string        `json:"corpus"`
	Concurrency int           `json:"concurrency"`
	N           int           `json:"n"`
	Duration    time.Duration `json:"duration"`
}

// loadgenResult is what a load generator process answers on its standard output.
type loadgenResult struct {
	OK      int           `json:"ok"`
	Failed  int           `json:"failed"`
	Elapsed time.Duration `json:"elapsed"`
	CPU     time.Duration `json:"cpu"` // the load generator's own, over the loop
	// Syscalls are the load generator's own read and write system calls over the loop
	// (processSyscalls); -1 when unknown.
	Syscalls  int64           `json:"syscalls"`
	Latencies []time.Duration `json:"latencies"`
	FirstErr  string          `json:"first_err,omitempty"`
}

// LoadgenMain runs one load generator job read from stdin (as the ingest scenario writes it
// when Options.Loadgen is set) and writes its result to stdout as JSON. It is what
// `resumer bench _loadgen` runs, in a process of its own, so that the CPU time the parent
// measures is the receiver's and NATS's only. It fails on a job it cannot read or a corpus
// it cannot load; failed requests are counted in the result, not returned.
func LoadgenMain(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	var job loadgenJob
	if err := json.NewDecoder(stdin).Decode(&job); err != nil {
		return fmt.Errorf("loadgen: read job: %w", err)
	}
	bodies, err := readCorpus(job.Corpus)
	if err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	n := min(job.N, len(bodies))
	if n == 0 || job.Concurrency <= 0 {
		return errors.New("loadgen: nothing to send")
	}
	var res loadResult
	if job.Publish {
		res, err = publishLoop(ctx, job, bodies[:n])
		if err != nil {
			return fmt.Errorf("loadgen: %w", err)
		}
	} else {
		poster, err := newWebhookPoster(job.URL, job.Secret)
		if err != nil {
			return fmt.Errorf("loadgen: %w", err)
		}
		defer poster.close()
		// Persona signs its webhooks: signed before the clock starts, within the tolerance.
		signed := make([]string, n)
		now := time.Now()
		for i := range signed {
			signed[i] = webhook.Sign(bodies[i], job.Secret, now)
		}
		cpu0, sys0 := processCPU(), processSyscalls()
		res = closedLoop(ctx, job.Concurrency, n, job.Duration, func(ctx context.Context, i int) error {
			return poster.postSigned(ctx, bodies[i], signed[i])
		})
		res.CPU, res.Syscalls = processCPU()-cpu0, syscallsSince(sys0)
	}
	out := loadgenResult{OK: res.OK, Failed: res.Failed, Elapsed: res.Elapsed, CPU: res.CPU, Syscalls: res.Syscalls, Latencies: res.Latencies}
	if res.FirstErr != nil {
		out.FirstErr = res.FirstErr.Error()
	}
	return json.NewEncoder(stdout).Encode(out)
}

// publishLoop publishes bodies straight to job.Stream, as the receiver does after its checks
// (publishRaw), and measures this process's CPU over the loop. Reading the events' ids and
// names from the bodies happens before the clock starts.
func publishLoop(ctx context.Context, job loadgenJob, bodies [][]byte) (loadResult, error) {
	events := make([]generatedEvent, len(bodies))
	for i, b := range bodies {
		ev, err := persona.ParseEnvelope(b)
		if err != nil {
			return loadResult{}, fmt.Errorf("corpus event %d: %w", i, err)
		}
		events[i] = generatedEvent{ID: ev.ID, Name: ev.Name, InquiryID: ev.InquiryID, CreatedAt: ev.CreatedAt, Body: b}
	}
	nc, js, err := connectNATS(job.NATSURL, "resumer-bench-publisher")
	if err != nil {
		return loadResult{}, err
	}
	defer nc.Close()
	cpu0, sys0 := processCPU(), processSyscalls()
	res := closedLoop(ctx, job.Concurrency, len(events), job.Duration, func(ctx context.Context, i int) error {
		return publishRaw(ctx, js, job.Stream, &events[i])
	})
	res.CPU, res.Syscalls = processCPU()-cpu0, syscallsSince(sys0)
	return res, nil
}

// writeCorpus writes the events' bodies to a file in dir, each after its length (4 bytes,
// big-endian), for a load generator process.
func writeCorpus(dir string, events []generatedEvent) (string, error) {
	path := filepath.Join(dir, "corpus.bin")
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("write corpus: %w", err)
	}
	w := bufio.NewWriter(f)
	var n [4]byte
	for _, ev := range events {
		binary.BigEndian.PutUint32(n[:], uint32(len(ev.Body)))
		w.Write(n[:])
		w.Write(ev.Body)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", fmt.Errorf("write corpus: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write corpus: %w", err)
	}
	return path, nil
}

// readCorpus reads a file writeCorpus wrote.
func readCorpus(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read corpus: %w", err)
	}
	var bodies [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, errors.New("read corpus: truncated")
		}
		l := int(binary.BigEndian.Uint32(b))
		if len(b) < 4+l {
			return nil, errors.New("read corpus: truncated")
		}
		bodies = append(bodies, b[4:4+l:4+l])
		b = b[4+l:]
	}
	return bodies, nil
}

// runLoadgen runs one closed-loop job in a load generator process (argv, e.g. resumer bench
// _loadgen) and returns its result; CPU is left for the caller to measure (its own process),
// LoadgenCPU is the child's.
func runLoadgen(ctx context.Context, argv []string, job loadgenJob) (loadResult, error) {
	in, err := json.Marshal(job)
	if err != nil {
		return loadResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, job.Duration+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(in)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return loadResult{}, fmt.Errorf("load generator %v: %w: %s", argv, err, bytes.TrimSpace(errOut.Bytes()))
	}
	var r loadgenResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return loadResult{}, fmt.Errorf("load generator: read result: %w", err)
	}
	res := loadResult{OK: r.OK, Failed: r.Failed, Elapsed: r.Elapsed, Offered: r.Elapsed, Latencies: r.Latencies, LoadgenCPU: r.CPU, LoadgenSyscalls: r.Syscalls}
	if r.FirstErr != "" {
		res.FirstErr = errors.New(r.FirstErr)
	}
	return res, nil
}
