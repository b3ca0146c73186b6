# Sourced by the tests here: a scratch directory as the working directory, kernel caches in it,
# and tiny(), which makes an installed example config tiny.
set -eu
exec 2>&1
src=$PWD
if [ -n "${AUTOPKGTEST_TMP:-}" ]; then
    tmp=$AUTOPKGTEST_TMP
else # run by hand or by CI
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
fi
configs=/usr/share/ramp-cl/configs
# PoCL's and ramp-cl's kernel caches both live under XDG_CACHE_HOME: HOME may be read-only.
export XDG_CACHE_HOME="$tmp/cache"
cd "$tmp"

# log FILE COMMAND...: run COMMAND, show its output and keep it in FILE; fail as COMMAND fails.
log() {
    file=$1 status=0
    shift
    "$@" >"$file" || status=$?
    cat "$file"
    return $status
}

# tiny NAME.yaml: $configs/NAME.yaml with a narrow model, 512 training images and 100 evaluation
# points (where it evaluates robustness), written to NAME.yaml here and checked by `ramp-cl
# check` (resolved copy in NAME.yaml.resolved). Its data path, init and output directory stay as installed: relative
# paths are taken from the working directory, so runs/ is created here.
tiny() {
    sed -e '/^  arch: small-cnn/a\  width: 4' \
        -e '/^  train_subset:/d' -e '/^  dataset: fashion-mnist/a\  train_subset: 512' \
        -e 's/^  n: .*/  n: 100/' -e 's/^  final_n: .*/  final_n: 100/' "$configs/$1" >"$1"
    ramp-cl check "$1" >"$1.resolved"
    # (final_n only where the installed config sets one: the natural warm-up evaluates clean
    # accuracy only)
    final_n=
    grep -q '^  final_n:' "$configs/$1" && final_n='  final_n: 100'
    for want in '  width: 4' '  train_subset: 512' ${final_n:+"$final_n"} \
        '  path: "/usr/share/datasets/fashion-mnist"'; do
        grep -qx -e "$want" "$1.resolved" || {
            echo "$1: no '$want' in the resolved config:"
            cat "$1.resolved"
            exit 1
        }
    done
}
