# The banner: the product's name framed in '=', then its version (on stdout, as NVIDIA's).
_banner="== ${NVIDIA_PRODUCT_NAME:-CUDA} =="
echo
print_repeats "=" ${#_banner}
echo "${_banner}"
print_repeats "=" ${#_banner}
echo
echo "CUDA Version ${CUDA_VERSION}"
