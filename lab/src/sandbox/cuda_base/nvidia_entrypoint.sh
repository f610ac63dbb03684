#!/bin/bash
# headroom's stand-in for /opt/nvidia/nvidia_entrypoint.sh of the nvidia/cuda images
# (lab/src/sandbox/base_image.rs): NVIDIA's behaviour without NVIDIA's text. Every part in
# /opt/nvidia/entrypoint.d runs in name order (.txt printed, .sh sourced), all on stdout,
# then the command is exec'd (bash without one).
shopt -s nullglob extglob
_SCRIPT_DIR="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
declare -a _PARTS=( "${_SCRIPT_DIR}/entrypoint.d"/*@(.txt|.sh) )
shopt -u nullglob extglob

print_repeats() {
  local -r char="$1" count="$2"
  local i
  for ((i = 1; i <= count; i++)); do echo -n "$char"; done
  echo
}

for _file in "${_PARTS[@]}"; do
  case "${_file}" in
    *.txt) cat "${_file}";;
    *.sh)  source "${_file}";;
  esac
done

echo

if [[ $# -eq 0 ]]; then
  exec "/bin/bash"
else
  exec "$@"
fi
