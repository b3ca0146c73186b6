#!/bin/sh
# tools/convert_checkpoint.py against PyTorch (tests/convert_checkpoint_test.py), with the first
# python3 that imports torch: PYTHON, python3, /usr/bin/python3; skipped (77) when none does.
srcdir=${RAMP_CL_SRCDIR:-$(dirname "$0")/..}
for p in ${PYTHON:-} python3 /usr/bin/python3; do
    if "$p" -c 'import torch' 2>/dev/null; then
        exec "$p" "$srcdir/tests/convert_checkpoint_test.py"
    fi
done
echo "no python3 with PyTorch (PYTHON, python3, /usr/bin/python3): skipped"
exit 77
