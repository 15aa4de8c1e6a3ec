// Package k8s holds no code: its test checks the Kubernetes manifests in
// this directory (manifests_test.go).
package k8s
