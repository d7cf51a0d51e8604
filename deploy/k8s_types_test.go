package deploy

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The subset of the Kubernetes API the manifest checks read. Fields the checks do not need
// are left out; the YAML decoder ignores them.

type objectMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// k8sObject is one manifest: its kind and name, and the node to decode it further from.
type k8sObject struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	node       *yaml.Node
	file       string
	data       map[string]string // a ConfigMap's data
}

func (o k8sObject) String() string { return fmt.Sprintf("%s %s (%s)", o.Kind, o.Metadata.Name, o.file) }

func (o k8sObject) decode(t *testing.T, v any) {
	t.Helper()
	if err := o.node.Decode(v); err != nil {
		t.Fatalf("%s: %v", o, err)
	}
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// matches says whether the selector selects pods labelled labels.
func (s labelSelector) matches(labels map[string]string) bool {
	if len(s.MatchLabels) == 0 {
		return false
	}
	for k, v := range s.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

type deployment struct {
	Metadata objectMeta `yaml:"metadata"`
	Spec     struct {
		Replicas *int          `yaml:"replicas"`
		Selector labelSelector `yaml:"selector"`
		Template struct {
			Metadata objectMeta `yaml:"metadata"`
			Spec     podSpec    `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	ServiceAccountName            string      `yaml:"serviceAccountName"`
	AutomountServiceAccountToken  *bool       `yaml:"automountServiceAccountToken"`
	EnableServiceLinks            *bool       `yaml:"enableServiceLinks"`
	TerminationGracePeriodSeconds *int        `yaml:"terminationGracePeriodSeconds"`
	HostNetwork                   bool        `yaml:"hostNetwork"`
	SecurityContext               *podSecCtx  `yaml:"securityContext"`
	Containers                    []container `yaml:"containers"`
	InitContainers                []container `yaml:"initContainers"`
	Volumes                       []volume    `yaml:"volumes"`
}

type podSecCtx struct {
	RunAsNonRoot   *bool `yaml:"runAsNonRoot"`
	RunAsUser      *int  `yaml:"runAsUser"`
	SeccompProfile *struct {
		Type string `yaml:"type"`
	} `yaml:"seccompProfile"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string  `yaml:"name"`
		Value     *string `yaml:"value"`
		ValueFrom *struct {
			ResourceFieldRef *struct {
				Resource string `yaml:"resource"`
			} `yaml:"resourceFieldRef"`
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	StartupProbe   *probe `yaml:"startupProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Lifecycle      *struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext *struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Privileged               *bool `yaml:"privileged"`
		RunAsUser                *int  `yaml:"runAsUser"`
		Capabilities             *struct {
			Drop []string `yaml:"drop"`
			Add  []string `yaml:"add"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

// portNumber resolves a probe's or a Service's port (a number or a port name) on c.
func (c container) portNumber(port string) int {
	for _, p := range c.Ports {
		if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
			return p.ContainerPort
		}
	}
	return 0
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
	TimeoutSeconds int `yaml:"timeoutSeconds"`
}

type volume struct {
	Name   string `yaml:"name"`
	Secret *struct {
		SecretName string `yaml:"secretName"`
		Items      []struct {
			Key  string `yaml:"key"`
			Path string `yaml:"path"`
		} `yaml:"items"`
	} `yaml:"secret"`
}

type service struct {
	Metadata objectMeta `yaml:"metadata"`
	Spec     struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []servicePort     `yaml:"ports"`
	} `yaml:"spec"`
}

type servicePort struct {
	Name       string `yaml:"name"`
	Port       int    `yaml:"port"`
	TargetPort string `yaml:"targetPort"`
}

type hpa struct {
	Spec struct {
		ScaleTargetRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicas *int `yaml:"minReplicas"`
		MaxReplicas int  `yaml:"maxReplicas"`
	} `yaml:"spec"`
}

type pdb struct {
	Spec struct {
		Selector       labelSelector `yaml:"selector"`
		MaxUnavailable any           `yaml:"maxUnavailable"`
		MinAvailable   any           `yaml:"minAvailable"`
	} `yaml:"spec"`
}

type networkPolicy struct {
	Spec struct {
		PodSelector labelSelector `yaml:"podSelector"`
		PolicyTypes []string      `yaml:"policyTypes"`
		Ingress     []struct {
			From  []map[string]any `yaml:"from"`
			Ports []struct {
				Port string `yaml:"port"`
			} `yaml:"ports"`
		} `yaml:"ingress"`
	} `yaml:"spec"`
}

type serviceMonitor struct {
	Spec struct {
		JobLabel  string        `yaml:"jobLabel"`
		Selector  labelSelector `yaml:"selector"`
		Endpoints []struct {
			Port        string       `yaml:"port"`
			Path        string       `yaml:"path"`
			Relabelings []relabeling `yaml:"relabelings"`
		} `yaml:"endpoints"`
	} `yaml:"spec"`
}

type relabeling struct {
	TargetLabel string `yaml:"targetLabel"`
}

// kustomization is the part of kustomization.yaml the checks read (and emulate).
type kustomization struct {
	Kind               string   `yaml:"kind"`
	Namespace          string   `yaml:"namespace"`
	Resources          []string `yaml:"resources"`
	Components         []string `yaml:"components"`
	ConfigMapGenerator []struct {
		Name     string   `yaml:"name"`
		Behavior string   `yaml:"behavior"`
		Literals []string `yaml:"literals"`
	} `yaml:"configMapGenerator"`
	Images []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
		Digest  string `yaml:"digest"`
	} `yaml:"images"`
}

// parseManifests reads the objects of a multi-document YAML stream.
func parseManifests(b []byte, file string) ([]k8sObject, error) {
	docs, err := yamlDocs(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var objs []k8sObject
	for _, d := range docs {
		var o k8sObject
		if err := d.Decode(&o); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			return nil, fmt.Errorf("%s: a document without apiVersion, kind or metadata.name", file)
		}
		o.node, o.file = d, file
		if o.Kind == "ConfigMap" {
			var cm struct {
				Data map[string]string `yaml:"data"`
			}
			if err := d.Decode(&cm); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			o.data = cm.Data
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// loadKustomization reads dir's kustomization.yaml and, the way kustomize would, the objects
// of its resources (directories recursively) and components, with the ConfigMaps its
// generators make (literals only; behavior merge folds into the base's). Images are
// renamed; names are not hashed and patches are not applied: the checks do not depend on
// either. Every YAML file in dir must be used.
func loadKustomization(t *testing.T, dir string) []k8sObject {
	t.Helper()
	var k kustomization
	readKustomization(t, filepath.Join(dir, "kustomization.yaml"), &k)
	var objs []k8sObject
	used := map[string]bool{"kustomization.yaml": true}
	for _, r := range slices.Concat(k.Resources, k.Components) {
		p := filepath.Join(dir, r)
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: resource %s: %v", dir, r, err)
			continue
		}
		if fi.IsDir() {
			objs = append(objs, loadKustomization(t, p)...)
			continue
		}
		used[r] = true
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		o, err := parseManifests(b, p)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o...)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) && !used[e.Name()] {
			t.Errorf("%s: %s is not listed in kustomization.yaml", dir, e.Name())
		}
	}
	for _, g := range k.ConfigMapGenerator {
		data := map[string]string{}
		for _, l := range g.Literals {
			key, val, ok := strings.Cut(l, "=")
			if !ok {
				t.Errorf("%s: configMapGenerator %s: literal %q is not KEY=value", dir, g.Name, l)
			}
			data[key] = val
		}
		if g.Behavior == "merge" {
			found := false
			for i := range objs {
				if objs[i].Kind == "ConfigMap" && objs[i].Metadata.Name == g.Name {
					maps.Copy(objs[i].data, data)
					found = true
				}
			}
			if !found {
				t.Errorf("%s: configMapGenerator %s merges into nothing", dir, g.Name)
			}
			continue
		}
		objs = append(objs, k8sObject{APIVersion: "v1", Kind: "ConfigMap", Metadata: objectMeta{Name: g.Name}, data: data, file: filepath.Join(dir, "kustomization.yaml")})
	}
	for _, img := range k.Images {
		for _, o := range objs {
			if o.Kind != "Deployment" {
				continue
			}
			renameImage(o.node, img.Name, img.NewName, img.NewTag, img.Digest)
		}
	}
	return objs
}

// renameImage rewrites every "image: name" under n as kustomize's images transformer does.
func renameImage(n *yaml.Node, name, newName, newTag, digest string) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "image" && v.Kind == yaml.ScalarNode {
				repo, tag, _ := strings.Cut(v.Value, ":")
				if repo != name {
					continue
				}
				if newName != "" {
					repo = newName
				}
				if newTag != "" {
					tag = newTag
				}
				v.Value = repo
				if tag != "" {
					v.Value += ":" + tag
				}
				if digest != "" {
					v.Value = repo + "@" + digest
				}
				continue
			}
			renameImage(v, name, newName, newTag, digest)
		}
		return
	}
	for _, c := range n.Content {
		renameImage(c, name, newName, newTag, digest)
	}
}

// readKustomization reads a kustomization.yaml; it has more fields than the checks read
// (patches, labels ...), so unknown fields are allowed.
func readKustomization(t *testing.T, path string, k *kustomization) {
	t.Helper()
	readYAML(t, path, k)
	if k.Kind != "Kustomization" && k.Kind != "Component" {
		t.Errorf("%s: kind %q", path, k.Kind)
	}
}
