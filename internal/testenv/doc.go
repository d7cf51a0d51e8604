// Package testenv gives tests the real components resumer talks to: an in-process NATS server
// with JetStream in a temporary directory, and a Redis server (RESUMER_TEST_REDIS_URL, else
// the local 127.0.0.1:6379, else a redis-server this package starts) with a key prefix of the
// test's own so tests sharing one Redis never see each other's keys.
//
// Failures to start a component fail the calling test with t.Fatal.
package testenv
