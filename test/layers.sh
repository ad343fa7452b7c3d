#!/bin/sh
# The include rule that keeps the tree the architecture (src/README.md): a file under
# src/LAYER/ or include/duet/LAYER/ includes duet headers only from the layers it may build on.
# Lower layers never see higher ones; http/ and fileport/ are siblings that never see each other.
# Prints every include that breaks the rule and exits 1, or one line "layers: ok".
cd "$(dirname "$0")/.." || exit 2

allowed() {
    case $1 in
        core) echo "core" ;;
        event) echo "core event" ;;
        net) echo "core event net" ;;
        store) echo "core event store" ;;
        session) echo "core event net store session" ;;
        http) echo "core event net store session http" ;;
        fileport) echo "core event net store session fileport" ;;
        server) echo "core event net store session http fileport server" ;;
        *) echo "" ;;
    esac
}

bad=0 files=0
for f in src/*/*.cpp include/duet/*/*.hpp; do
    [ -f "$f" ] || continue
    files=$((files + 1))
    case $f in
        src/*) layer=${f#src/} ;;
        *) layer=${f#include/duet/} ;;
    esac
    layer=${layer%%/*}
    ok=$(allowed "$layer")
    if [ -z "$ok" ]; then
        echo "$f: '$layer' is not a layer (core event net store session http fileport server)"
        bad=$((bad + 1))
        continue
    fi
    for inc in $(sed -n 's|^#include "duet/\([a-z]*\)/.*|\1|p' "$f" | sort -u); do
        case " $ok " in
            *" $inc "*) ;;
            *)
                grep -n "^#include \"duet/$inc/" "$f" | sed "s|^|$f:|; s|\$| ($layer/ may include only: $ok)|"
                bad=$((bad + 1))
                ;;
        esac
    done
    if grep -q '^#include "duet/[a-z_]*\.hpp"' "$f"; then
        echo "$f: includes a duet header outside the layer folders"
        bad=$((bad + 1))
    fi
done
for f in src/*.cpp include/duet/*.hpp; do
    [ -f "$f" ] && { echo "$f: outside a layer folder"; bad=$((bad + 1)); }
done
if [ "$bad" != 0 ]; then
    echo "layers: $bad include(s) break the rule"
    exit 1
fi
echo "layers: ok ($files files)"
