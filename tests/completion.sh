#!/bin/bash
# The bash completion (tools/bash-completion/ramp-cl; RAMP_CL_COMPLETION names another copy, as
# the Debian package's autopkgtest does with the installed one): what it offers after each kind
# of word. Prints one line per case and a closing "N passed, N failed".
RAMP_CL=${RAMP_CL:-./ramp-cl}
completion=${RAMP_CL_COMPLETION:-${RAMP_CL_SRCDIR:-.}/tools/bash-completion/ramp-cl}
. "$completion" || exit 99
tmp=$(mktemp -d "${RAMP_CL_TEST_TMP:-/tmp}/completion-XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

# expect NAME WANT WORD...: the candidates for the last WORD of "ramp-cl WORD...", sorted and
# joined by spaces, must be WANT.
expect() {
    local name=$1 want=$2 got
    shift 2
    COMP_WORDS=("$RAMP_CL" "$@")
    COMP_CWORD=$#
    _ramp_cl
    got=$(printf '%s\n' "${COMPREPLY[@]}" | sort | paste -s -d ' ')
    if [ "$got" = "$want" ]; then
        echo "PASS: $name"
        pass=$((pass + 1))
    else
        echo "FAIL: $name: ramp-cl $*<TAB> offered '$got', wanted '$want'"
        fail=$((fail + 1))
    fi
}

# Configs are .yaml or .yml files; directories are offered too, to descend into.
mkdir "$tmp/runs"
touch "$tmp/a.yaml" "$tmp/b.yml" "$tmp/notes.txt" "$tmp/m.safetensors" "$tmp/p.svg"
cd "$tmp" || exit 99

if complete -p ramp-cl | grep -q -- '-F _ramp_cl ramp-cl$'; then
    echo "PASS: registered"
    pass=$((pass + 1))
else
    echo "FAIL: registered: complete -p ramp-cl: $(complete -p ramp-cl 2>&1)"
    fail=$((fail + 1))
fi
expect commands 'selftest' se
expect commands-and-configs 'a.yaml b.yml bench check eval pair plot runs selftest' ''
expect options '--device' --dev
expect short-and-long-l '--l1 --l2 --layers --linf --list-devices' --l
# "[N] name" lines of --list-devices: PoCL is device 0 wherever the tests run
devices=$("$RAMP_CL" --list-devices | sed -n 's/^\[\([0-9]*\)\].*/\1/p' | sort | paste -s -d ' ')
expect devices "$devices" --device ''
expect devices-short "$devices" -d ''
[ -n "$devices" ] || { echo "FAIL: devices: ramp-cl --list-devices printed none"; fail=$((fail + 1)); }
expect protocol 'fast full' eval a.yaml --protocol ''
expect model 'preact-resnet18 small-cnn' bench --model ''
expect no-numbers '' bench --batch ''
expect check-config 'a.yaml b.yml runs' check ''
expect config-after-device 'a.yaml b.yml runs' --device 0 eval ''
expect one-config-only '' check a.yaml ''
expect checkpoint 'm.safetensors runs' eval a.yaml --checkpoint ''
expect at-checkpoint 'm.safetensors runs' pair a.yaml --l1 ''
expect write 'a.yaml b.yml runs' pair a.yaml --write ''
expect output 'p.svg runs' plot runs -o ''
expect plot-run-dirs 'runs' plot ''
expect resume 'runs' --resume ''
expect nothing-after-selftest '' selftest ''

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
