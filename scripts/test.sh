#!/usr/bin/env bash
# Runs every test: formatting and lints, the Rust unit and integration tests, then the
# end-to-end suite that drives the real `cairn` binary with boto3 and the AWS CLI, and a
# short fuzz run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

echo "== end-to-end tests (boto3, AWS CLI)"
cargo build --locked --bin cairn
python3 -m pip --version >/dev/null
python3 -c "import boto3" 2>/dev/null || python3 -m pip install --quiet boto3
command -v aws >/dev/null || python3 -m pip install --quiet awscli
python3 -c "import pytest" 2>/dev/null || python3 -m pip install --quiet pytest
# The S3-compatible server the delivery tests write to.
python3 -c "import moto.server, flask" 2>/dev/null || python3 -m pip install --quiet "moto[server]"
# Debian's packages: a real Prometheus server scrapes /metrics in one test, and libfaketime
# moves the server's clock in another.
packages=()
command -v prometheus >/dev/null || packages+=(prometheus)
compgen -G "/usr/lib/*/faketime/libfaketimeMT.so.1" >/dev/null || packages+=(libfaketime)
if [ ${#packages[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
CAIRN_BIN="$PWD/target/debug/cairn" python3 -m pytest tests -q -p no:cacheprovider

echo "== fuzz smoke run (cargo fuzz: each target for 10 s from its kept corpus)"
fuzz/run.sh 10
