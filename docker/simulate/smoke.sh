#!/bin/sh
# The simulator image's smoke test: the libraries are there at their full size, and the
# downloads and caches are not. Prints one JSON object, as /opt/headroom/smoke.py does.
unit=${SIM_UNIT_MB:?SIM_UNIT_MB is not set}
mib=1048576
ok=true
checks=""

check() { # name ok detail
  [ "$2" = true ] || ok=false
  checks="$checks${checks:+,}{\"name\":\"$1\",\"ok\":$2,\"detail\":\"$3\"}"
}

size_is() { # path bytes
  have=$(stat -c %s "$1" 2>/dev/null || echo missing)
  if [ "$have" = "$2" ]; then echo true; else echo false; fi
}

absent() { # path
  if [ -e "$1" ]; then echo false; else echo true; fi
}

present() { # path
  if [ -e "$1" ]; then echo true; else echo false; fi
}

cuda=$((unit * 2 * mib))
torch=$((unit * 3 / 2 * mib))
check cuda-libraries "$(size_is /usr/local/cuda/lib64/libcudart.so "$cuda")" "libcudart.so $cuda bytes"
check torch-libraries "$(size_is /opt/venv/lib/libtorch.so "$torch")" "libtorch.so $torch bytes"
check no-download "$(absent /tmp/dl)" "/tmp/dl removed"
check no-pip-cache "$(absent /root/.cache/pip)" "/root/.cache/pip removed"
check no-apt-lists "$(absent /var/lib/apt/lists/index)" "apt lists removed"
check health-file "$(present /srv/health)" "/srv/health present"

echo "{\"ok\":$ok,\"torch\":null,\"cuda_available\":false,\"checks\":[$checks]}"
[ "$ok" = true ]
