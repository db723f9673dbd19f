// consumer: what a Kubernetes component sees when it (re)starts on a kubeadm PKI, with the libraries the
// components use: Go's crypto/tls and crypto/x509 (tls.LoadX509KeyPair is how kube-apiserver, etcd and
// kube-controller-manager load --tls-cert-file/--tls-private-key-file and their client pairs) and
// client-go's kubeconfig loader (through `kubectl config view --raw --minify`, as kubectl, the scheduler
// and the controller manager load a kubeconfig).
//
// Usage: consumer KUBE_DIR   (KUBE_DIR holds pki/ and the *.conf files)
// Prints one JSON object per entry: {"name", "ok", "error"}. Never prints key material.
// Built by tests/crash_safety.rs with Go's standard library only.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

type result struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

var pairs = []struct{ name, base, ca string }{
	{"apiserver", "apiserver", "ca"},
	{"apiserver-etcd-client", "apiserver-etcd-client", "etcd/ca"},
	{"apiserver-kubelet-client", "apiserver-kubelet-client", "ca"},
	{"etcd-healthcheck-client", "etcd/healthcheck-client", "etcd/ca"},
	{"etcd-peer", "etcd/peer", "etcd/ca"},
	{"etcd-server", "etcd/server", "etcd/ca"},
	{"front-proxy-client", "front-proxy-client", "front-proxy-ca"},
}

var kubeconfigs = []string{"admin.conf", "controller-manager.conf", "scheduler.conf", "super-admin.conf"}

func pool(pemBytes []byte) (*x509.CertPool, error) {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pemBytes) {
		return nil, errors.New("no CA certificate")
	}
	return p, nil
}

// verify: the leaf of pair chains to roots (any extended key usage: client and serving pairs alike).
func verify(pair tls.Certificate, roots *x509.CertPool) error {
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

func checkPair(dir, base, ca string) error {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "pki", base+".crt"), filepath.Join(dir, "pki", base+".key"))
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "pki", ca+".crt"))
	if err != nil {
		return err
	}
	roots, err := pool(caPEM)
	if err != nil {
		return err
	}
	return verify(pair, roots)
}

type kubeconfig struct {
	Clusters []struct {
		Cluster map[string]interface{} `json:"cluster"`
	} `json:"clusters"`
	Users []struct {
		User map[string]interface{} `json:"user"`
	} `json:"users"`
}

func field(m map[string]interface{}, k string) ([]byte, error) {
	s, ok := m[k].(string)
	if !ok {
		return nil, fmt.Errorf("no %s", k)
	}
	return base64.StdEncoding.DecodeString(s)
}

func checkKubeconfig(dir, file string) error {
	out, err := exec.Command("kubectl", "config", "view", "--raw", "--minify", "-o", "json", "--kubeconfig", filepath.Join(dir, file)).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("kubectl config view: %s", firstLine(ee.Stderr))
		}
		return err
	}
	var kc kubeconfig
	if err := json.Unmarshal(out, &kc); err != nil {
		return err
	}
	if len(kc.Users) != 1 || len(kc.Clusters) != 1 {
		return errors.New("current context does not resolve to one user and one cluster")
	}
	certPEM, err := field(kc.Users[0].User, "client-certificate-data")
	if err != nil {
		return err
	}
	keyPEM, err := field(kc.Users[0].User, "client-key-data")
	if err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	caPEM, err := field(kc.Clusters[0].Cluster, "certificate-authority-data")
	if err != nil {
		return err
	}
	roots, err := pool(caPEM)
	if err != nil {
		return err
	}
	if err := verify(pair, roots); err != nil {
		return fmt.Errorf("against certificate-authority-data: %w", err)
	}
	// and against the CA on disk, which the apiserver trusts for client certificates
	diskCA, err := os.ReadFile(filepath.Join(dir, "pki", "ca.crt"))
	if err != nil {
		return err
	}
	disk, err := pool(diskCA)
	if err != nil {
		return err
	}
	if err := verify(pair, disk); err != nil {
		return fmt.Errorf("against pki/ca.crt: %w", err)
	}
	return nil
}

func firstLine(b []byte) string {
	for i, c := range b {
		if c == '\n' {
			return string(b[:i])
		}
	}
	return string(b)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: consumer KUBE_DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	var results []result
	add := func(name string, err error) {
		r := result{Name: name, OK: err == nil}
		if err != nil {
			r.Error = err.Error()
		}
		results = append(results, r)
	}
	for _, p := range pairs {
		if _, err := os.Stat(filepath.Join(dir, "pki", p.base+".crt")); os.IsNotExist(err) {
			continue
		}
		add(p.name, checkPair(dir, p.base, p.ca))
	}
	for _, k := range kubeconfigs {
		if _, err := os.Stat(filepath.Join(dir, k)); os.IsNotExist(err) {
			continue
		}
		add(k, checkKubeconfig(dir, k))
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		os.Exit(1)
	}
}
