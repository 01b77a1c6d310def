#!/bin/sh
# Creates a Python virtual environment with the independent implementations used by
# tests/tests/interop.rs, then prints the variable to export.
#
#   interop/setup.sh /tmp/passerelle-interop
#   export PASSERELLE_INTEROP_PYTHON=/tmp/passerelle-interop/bin/python
#   cargo test -p passerelle-tests --test interop
set -eu
if [ $# -ne 1 ]; then
    echo "usage: $0 VENV_DIR" >&2
    exit 2
fi
venv=$1
here=$(cd "$(dirname "$0")" && pwd)
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
"$venv/bin/python" -c "import http_message_signatures, http_sfv, nacl, rfc8785, base58, apsig, cryptography"
echo "export PASSERELLE_INTEROP_PYTHON=$venv/bin/python"
