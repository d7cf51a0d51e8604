package deploy

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// k8sTypes maps apiVersion/kind to a new value of the official Go type for it.
var k8sTypes = map[string]func() any{
	"apps/v1/Deployment":                       func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                      func() any { return &appsv1.StatefulSet{} },
	"apps/v1/DaemonSet":                        func() any { return &appsv1.DaemonSet{} },
	"v1/Service":                               func() any { return &corev1.Service{} },
	"v1/ConfigMap":                             func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                                func() any { return &corev1.Secret{} },
	"v1/ServiceAccount":                        func() any { return &corev1.ServiceAccount{} },
	"v1/Namespace":                             func() any { return &corev1.Namespace{} },
	"autoscaling/v2/HorizontalPodAutoscaler":   func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1/PodDisruptionBudget":            func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy":       func() any { return &networkingv1.NetworkPolicy{} },
	"networking.k8s.io/v1/Ingress":             func() any { return &networkingv1.Ingress{} },
	"batch/v1/Job":                             func() any { return &batchv1.Job{} },
	"batch/v1/CronJob":                         func() any { return &batchv1.CronJob{} },
	"rbac.authorization.k8s.io/v1/Role":        func() any { return &rbacv1.Role{} },
	"rbac.authorization.k8s.io/v1/RoleBinding": func() any { return &rbacv1.RoleBinding{} },
}

// notInK8sAPI are kinds k8s.io/api has no type for: kustomize's own files and the Prometheus
// Operator's resources (checked by the rule and dashboard tests instead).
var notInK8sAPI = map[string]bool{
	"Kustomization": true, "Component": true, "PrometheusRule": true, "ServiceMonitor": true,
}

// TestK8sManifestsDecodeStrictly decodes every Kubernetes object under k8s/ into the official
// k8s.io/api type of its kind, refusing unknown or duplicate fields: a misspelt field name
// (say "readinesProbe" or "imagePullPolice"), which kubectl would drop or reject, fails here.
func TestK8sManifestsDecodeStrictly(t *testing.T) {
	checked := 0
	err := filepath.WalkDir("k8s", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (!strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml")) {
			return err
		}
		for i, doc := range splitYAMLDocs(t, path) {
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &head); err != nil {
				t.Errorf("%s document %d: %v", path, i+1, err)
				continue
			}
			if head.Kind == "" || notInK8sAPI[head.Kind] {
				continue
			}
			newObj, ok := k8sTypes[head.APIVersion+"/"+head.Kind]
			if !ok {
				t.Errorf("%s document %d: %s %s has no k8s.io/api type in k8sTypes: add it (or list a CRD in notInK8sAPI)", path, i+1, head.APIVersion, head.Kind)
				continue
			}
			if err := yaml.UnmarshalStrict(doc, newObj()); err != nil {
				t.Errorf("%s document %d (%s): %v", path, i+1, head.Kind, err)
			}
			checked++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 8 {
		t.Errorf("decoded only %d objects; the walk missed the manifests", checked)
	}
}

// TestStrictDecodeCatchesTypos proves the check can fail: a misspelt field is refused.
func TestStrictDecodeCatchesTypos(t *testing.T) {
	doc := []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - name: c\n          readinesProbe: {}\n")
	if err := yaml.UnmarshalStrict(doc, &appsv1.Deployment{}); err == nil || !strings.Contains(err.Error(), "readinesProbe") {
		t.Errorf("a misspelt field decoded without error: %v", err)
	}
}

// splitYAMLDocs returns the non-empty documents of a multi-document YAML file.
func splitYAMLDocs(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), b...), []byte("\n---")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}
