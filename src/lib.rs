//! kubeadm-certs engine
