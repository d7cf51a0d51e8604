package webhook

// QueuedPublishes returns how many messages wait in rc's publish queue.
func QueuedPublishes(rc *Receiver) int {
	rc.queue.mu.Lock()
	defer rc.queue.mu.Unlock()
	return len(rc.queue.pending)
}

// PublisherRunning reports whether a publishing goroutine of rc is running or starting.
func PublisherRunning(rc *Receiver) bool {
	rc.queue.mu.Lock()
	defer rc.queue.mu.Unlock()
	return rc.queue.running
}

// PublishBatches returns how many batches rc's publishing goroutines took and how many
// messages they held.
func PublishBatches(rc *Receiver) (batches, messages int64) {
	return rc.queue.batches.Load(), rc.queue.published.Load()
}
