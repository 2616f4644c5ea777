# Set-up is part of every target that needs it: `make demo` and `make test` work on a
# fresh Debian 12 machine (as root) with nothing else done first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

# Debian packages: the venv's interpreter and the tools the tests drive for real.
APT_PACKAGES := python3-venv python3-pip python3-yaml openssl shellcheck busybox-static \
	netplan.io python3-gi gir1.2-nm-1.0 ifupdown \
	golang-go golang-github-vmware-govmomi-dev gcc python3-dev libxml2-dev libcrypt-dev \
	libvirt-daemon-system libvirt-daemon-driver-qemu python3-libvirt qemu-system-x86 qemu-utils \
	genisoimage isolinux syslinux-common linux-image-amd64 cpio \
	kmod lvm2 mdadm grub-efi-amd64-bin mtools dosfstools ovmf zstd lz4 \
	debootstrap gdisk e2fsprogs xfsprogs btrfs-progs cryptsetup-bin seabios \
	python3-guestfs libguestfs-xfs libguestfs-tools isc-dhcp-client \
	zsh groff-base

.PHONY: setup test stress demo bench lint clean schema man
setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages: $$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $$missing; \
	fi
	@# ifupdown-ng conflicts with Debian's ifupdown: unpack it aside for its ifquery (tests)
	[ -x /opt/ifupdown-ng/sbin/ifquery ] || { d=$$(mktemp -d) && (cd $$d && \
	    apt-get download -q ifupdown-ng) && dpkg -x $$d/ifupdown-ng_*.deb /opt/ifupdown-ng; \
	    rm -rf $$d; }
	[ -x $(PY) ] || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

test: lint
	$(PY) -m pytest -n auto --dist loadgroup -q

# SIGKILL the real apply and revert 1000 times (make test: 100); a failure names its seed,
# VMTAILOR_KILL_SEED=<seed> reruns that one trial
stress: setup
	VMTAILOR_KILLS=1000 $(PY) -m pytest -n auto --dist loadgroup -q tests/stress

demo: setup
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH scripts/demo.sh

bench: setup
	$(PY) scripts/bench.py

# ruff (the rule set in pyproject.toml) and mypy: strict on vmtailor.api, lenient elsewhere
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) scripts/typecheck.py

schema: setup
	$(VENV)/bin/vmtailor schema > configs/vmtailor.schema.json

# the man page, from the same argparse definitions as --help (vmtailor man)
man: setup
	mkdir -p build
	$(VENV)/bin/vmtailor man > build/vmtailor.1

clean:
	rm -rf $(VENV) build *.egg-info
