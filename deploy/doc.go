// Package deploy holds what it takes to run and watch resumer, and the tests that keep it
// honest. It has no code of its own; its files are:
//
//   - ../Dockerfile and ../docker-compose.yml: the image, and the whole stack on one machine
//     (NATS, Redis, resumer's web and worker services, the Persona simulator, mailpit,
//     Prometheus, Grafana), with its support files under prometheus/ and grafana/;
//   - k8s/: a kustomize base (Deployments per role group, Services, autoscalers, disruption
//     budgets, network policies), a Prometheus Operator component and an example overlay;
//   - prometheus/alerts.yml and its promtool unit tests, with RUNBOOK.md;
//   - grafana/resumer.json: the dashboard.
//
// The tests parse every one of those files and check them against the code: every RESUMER_
// variable against the README's configuration table (which cmd/resumer's own test keeps in
// step with the code), every metric and label a rule or a panel uses against the collectors
// the Go source registers, probes against the admin listener, and the security settings of
// every container. They run promtool and `kubectl kustomize` when those are installed.
// README.md is the deployment guide.
package deploy
