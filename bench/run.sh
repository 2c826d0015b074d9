#!/usr/bin/env bash
# Runs the Go benchmarks and writes bench/RESULTS.md with the command that
# produced them. Numbers from a shared machine are noisy: compare ratios
# measured side by side in one run, not absolute times across runs.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=(go test -run '^$' -bench . -benchmem -count 3 ./etl/ ./mailer/)
out=$("${cmd[@]}")
{
	echo "# Benchmark results"
	echo
	echo "Produced by \`make bench\`, which runs:"
	echo
	echo '```'
	echo "${cmd[*]}"
	echo '```'
	echo
	echo "on $(uname -srm), $(nproc) cores, $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%d)."
	echo
	echo '```'
	echo "$out"
	echo '```'
} > bench/RESULTS.md
echo "$out"
echo "written: bench/RESULTS.md"
