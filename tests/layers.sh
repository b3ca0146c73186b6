#!/bin/sh
# The source layout's include rule, checked on the tree (README, "Layout"):
#   - src/ has one folder per layer, lowest first: base io runtime nn attack train cli;
#   - a module is src/LAYER/NAME.c (src/nn/layers/NAME.c is in nn) with its header
#     include/ramp/NAME.h; headers without a .c file are listed in HEADER_ONLY below;
#   - a file may include the headers of its own layer and of the layers below it, never above;
#   - the modules' include graph has no cycle, inside a layer as well.
# Prints one line per violation and a closing "N passed, N failed".
top=${RAMP_CL_SRCDIR:-$(dirname "$0")/..}
cd "$top" || exit 99
LAYERS="base io runtime nn attack train cli"
# Headers that declare no .c module: cl.h wraps the OpenCL headers.
HEADER_ONLY="cl:base"

rank() { # rank LAYER: its position in LAYERS, or nothing
    i=0
    for l in $LAYERS; do
        [ "$l" = "$1" ] && { echo $i; return; }
        i=$((i + 1))
    done
}
layer_of_module() { # layer_of_module NAME: the layer of src/*/NAME.c, src/nn/layers/NAME.c
    for h in $HEADER_ONLY; do
        [ "${h%%:*}" = "$1" ] && { echo "${h#*:}"; return; }
    done
    f=$(ls src/*/"$1".c src/nn/layers/"$1".c 2>/dev/null | head -n 1)
    [ -n "$f" ] && { f=${f#src/}; echo "${f%%/*}"; }
}

pass=0
fail=0
edges=$(mktemp) || exit 99
trap 'rm -f "$edges"' EXIT

for f in $(ls src/*/*.c src/nn/layers/*.c include/ramp/*.h | grep -v '^src/cl_embedded\.c$'); do
    case $f in
    include/ramp/*) name=$(basename "$f" .h); layer=$(layer_of_module "$name") ;;
    *) name=$(basename "$f" .c); layer=${f#src/}; layer=${layer%%/*} ;;
    esac
    if [ -z "$layer" ] || [ -z "$(rank "$layer")" ]; then
        echo "FAIL: $f: no layer (a header needs src/LAYER/$name.c or an entry in HEADER_ONLY)"
        fail=$((fail + 1))
        continue
    fi
    ok=1
    for inc in $(sed -n 's|^#include "ramp/\([a-z0-9_]*\)\.h".*|\1|p' "$f"); do
        [ "$inc" = "$name" ] && continue
        il=$(layer_of_module "$inc")
        if [ -z "$il" ]; then
            echo "FAIL: $f includes ramp/$inc.h, which belongs to no module"
            ok=0
        elif [ "$(rank "$il")" -gt "$(rank "$layer")" ]; then
            echo "FAIL: $f ($layer) includes ramp/$inc.h of a higher layer ($il)"
            ok=0
        fi
        echo "$name $inc" >>"$edges"
    done
    if [ $ok -eq 1 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done

# tsort names the modules on a cycle on stderr.
cycles=$(tsort "$edges" 2>&1 >/dev/null)
if [ -n "$cycles" ]; then
    echo "FAIL: the modules' includes form a cycle:"
    echo "$cycles" | sed -n 's/^tsort: \([a-z0-9_]*\)$/    \1/p'
    fail=$((fail + 1))
else
    pass=$((pass + 1))
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
