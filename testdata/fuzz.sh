#!/bin/sh
# Runs every fuzz target of every package, one at a time (go test -fuzz
# takes one), each for FUZZTIME (default 20s) with FUZZPARALLEL workers
# (default 2). Targets are found, not listed: the packages whose tests
# define a func Fuzz..., then go test -list names the targets.
#
# A failing target makes the run fail. go writes the input that failed to
# PKG/testdata/fuzz/FuzzX/HASH; the script says where: commit that file
# (it becomes a seed the ordinary go test runs) with the fix.
set -u
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-20s}
FUZZPARALLEL=${FUZZPARALLEL:-2}
cd "$(dirname "$0")/.." || exit 2

dirs=$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -r -n1 dirname | sort -u)
if [ -z "$dirs" ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi
# "go test -list" prints a package's matching names, then "ok  PKG ...".
list=$($GO test -list '^Fuzz' $dirs) || { echo "$list"; echo "fuzz: listing the targets failed" >&2; exit 1; }
targets=$(echo "$list" | awk '/^Fuzz/ { names = names " " $1; next }
	/^ok/ { n = split(names, a, " "); for (i = 1; i <= n; i++) print $2, a[i]; names = "" }')
if [ -z "$targets" ]; then
	echo "fuzz: no fuzz targets listed:" >&2
	echo "$list" >&2
	exit 1
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
failed=""
count=0
echo "$targets" | {
	while read -r pkg name; do
		count=$((count + 1))
		echo "fuzz: $pkg $name for $FUZZTIME"
		$GO test "$pkg" -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -parallel "$FUZZPARALLEL" >"$out" 2>&1
		rc=$?
		cat "$out"
		# On a loaded machine go's fuzzing coordinator can fail to stop
		# its workers by the deadline: "context deadline exceeded" with
		# no failing input is the toolchain's, not the target's. Once
		# more; a second such failure counts.
		if [ $rc -ne 0 ] && grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"; then
			echo "fuzz: $name: go's fuzzing stopped late (context deadline exceeded, no input): once more"
			$GO test "$pkg" -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -parallel "$FUZZPARALLEL" >"$out" 2>&1
			rc=$?
			cat "$out"
		fi
		if [ $rc -ne 0 ]; then
			dir=$($GO list -f '{{.Dir}}' "$pkg")
			seed=$(sed -n 's/.*Failing input written to \(testdata\/fuzz\/[^ ]*\).*/\1/p' "$out" | head -n 1)
			if [ -n "$seed" ]; then
				echo "fuzz: $name failed; the input is in ${dir#"$PWD"/}/$seed: fix the bug and commit that file as a seed" >&2
			else
				echo "fuzz: $name failed (exit $rc) without writing an input" >&2
			fi
			failed="$failed $pkg.$name"
		fi
	done
	if [ -n "$failed" ]; then
		echo "fuzz: FAILED:$failed" >&2
		exit 1
	fi
	echo "fuzz: $count targets, $FUZZTIME each: no failures"
}
