# kubeadm-certs: build targets that are not plain `cargo build`.
#
#   make collection        portable release binaries for x86_64 and aarch64 Linux (glibc 2.17 floor, cargo zigbuild),
#                          placed into the Ansible collection, and the collection tarball in dist/; installs what
#                          it needs when missing (scripts/setup.sh collection: root or sudo on a fresh Debian)
#   make collection-smoke  runs the aarch64 binary under qemu-aarch64 against a kubeadm-made PKI and compares its
#                          report with the x86_64 binary's
#   make ansible-checks    ansible-lint (production profile), ansible-test sanity, ansible-doc
#   make ansible-e2e       the roles and the action plugin against a kubeadm-made PKI on this machine
#
# The per-architecture binaries live in ansible/bin/ and are reached as modules through the symlinks
# ansible/plugins/modules/certs_<arch>: the module loader follows the links, `ansible-doc -l` skips them (a
# binary read as documentation makes it warn), and `ansible-galaxy collection build` keeps both. All of them are
# git-ignored: a committed binary under plugins/ breaks ansible-test sanity.

# scripts/setup.sh installs what a target needs when it is missing; its tools (cargo, a Python virtualenv on
# machines whose Python is Debian's) are found through this PATH.
export PATH := $(shell $(CURDIR)/scripts/setup.sh path)
CARGO ?= cargo
# The release profile strips already (strip = true); GNU strip handles both ELF flavours (elf64-little) if not.
STRIP ?= strip
ARCHES := x86_64 aarch64
# glibc 2.17 (CentOS 7, 2012) is the oldest C library any supported control plane runs on.
GLIBC := 2.17
COLLECTION := ansible
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
DIST := dist

.PHONY: collection collection-binaries collection-deps collection-smoke ansible-checks ansible-e2e clean-collection

collection: collection-binaries
	rm -f $(DIST)/k8s_pki-kubeadm-*.tar.gz
	mkdir -p $(DIST)
	ansible-galaxy collection build --force --output-path $(DIST) $(COLLECTION)
	@ls -l $(DIST)/k8s_pki-kubeadm-*.tar.gz

collection-binaries: collection-deps
	@set -e; for arch in $(ARCHES); do \
	  echo "building kubeadm-certs for $$arch-unknown-linux-gnu (glibc $(GLIBC))"; \
	  $(CARGO) zigbuild --release --locked --target $$arch-unknown-linux-gnu.$(GLIBC) --bin kubeadm-certs; \
	  mkdir -p $(COLLECTION)/bin; \
	  cp $(TARGET_DIR)/$$arch-unknown-linux-gnu/release/kubeadm-certs $(COLLECTION)/bin/kubeadm-certs-$$arch.tmp; \
	  if readelf -S -W $(COLLECTION)/bin/kubeadm-certs-$$arch.tmp | grep -q '\.symtab'; then \
	    $(STRIP) --strip-all $(COLLECTION)/bin/kubeadm-certs-$$arch.tmp; \
	  fi; \
	  chmod 0755 $(COLLECTION)/bin/kubeadm-certs-$$arch.tmp; \
	  mv $(COLLECTION)/bin/kubeadm-certs-$$arch.tmp $(COLLECTION)/bin/kubeadm-certs-$$arch; \
	  scripts/compress-binary.sh $(COLLECTION)/bin/kubeadm-certs-$$arch; \
	  ln -sfn ../../bin/kubeadm-certs-$$arch $(COLLECTION)/plugins/modules/certs_$$arch; \
	done
	@scripts/check-binaries.sh $(COLLECTION)/bin

# Installs only what is missing (scripts/setup.sh collection): ansible-core (ansible-galaxy) and zig (PyPI
# ziglang), cargo-zigbuild (crates.io), the x86_64 and aarch64 Rust standard libraries, binutils, a C compiler.
collection-deps:
	@scripts/setup.sh collection

collection-smoke:
	scripts/smoke-aarch64.sh $(COLLECTION)/bin

ansible-checks:
	scripts/ansible-checks.sh

ansible-e2e:
	scripts/ansible-e2e.sh

clean-collection:
	rm -rf $(COLLECTION)/bin $(DIST)/k8s_pki-kubeadm-*.tar.gz
	rm -f $(addprefix $(COLLECTION)/plugins/modules/certs_,$(ARCHES))
