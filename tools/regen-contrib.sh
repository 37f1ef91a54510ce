#!/usr/bin/env bash
# Regenerates contrib/man/*.1 and contrib/completions/* from the clap
# definitions (src/cli/args.rs). tests/integration/cli.rs fails when they
# are out of date.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
bin=target/debug/sqfuse
rm -rf contrib/man
"$bin" man contrib/man
mkdir -p contrib/completions
"$bin" completions bash > contrib/completions/sqfuse.bash
"$bin" completions zsh > contrib/completions/_sqfuse
"$bin" completions fish > contrib/completions/sqfuse.fish
