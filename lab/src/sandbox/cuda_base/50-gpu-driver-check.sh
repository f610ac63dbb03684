# Without a driver (libcuda.so.1 in the ld.so cache or on LD_LIBRARY_PATH) and a device node,
# a warning — on stdout, as NVIDIA's.
_LIBCUDA_FROM_LD_CACHE=$(ldconfig -p 2>/dev/null | grep libcuda.so.1 || true)
_LIBCUDA_FROM_LD_LIBRARY_PATH=$( ( IFS=: ; for i in ${LD_LIBRARY_PATH}; do ls "$i"/libcuda.so.1 2>/dev/null | grep -v compat; done ) || true)
_LIBCUDA_FOUND="${_LIBCUDA_FROM_LD_CACHE}${_LIBCUDA_FROM_LD_LIBRARY_PATH}"
_DRIVER_FOUND=$(ls /dev/nvidiactl /dev/dxg /dev/nvgpu 2>/dev/null || true)
if [[ -z "${_LIBCUDA_FOUND}" || -z "${_DRIVER_FOUND}" ]]; then
  echo
  echo "WARNING: The NVIDIA Driver was not detected.  GPU functionality will not be available."
  echo "   Use the NVIDIA Container Toolkit to start this container with GPU support; see"
  echo "   https://docs.nvidia.com/datacenter/cloud-native/ ."
fi
