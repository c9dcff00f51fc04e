# Finds the one LibTorch ASG Lab builds against: the one inside the pinned PyTorch wheel of the project's
# Python environment (.venv, made by scripts/setup.sh from requirements.lock), so that the C++ side and the
# Python side of every bench and exactness test run the same LibTorch. Decides whether the CUDA path is
# compiled (ASG_CUDA) and sets:
#   ASG_PYTHON          the reference environment's interpreter (the tests and benches run it)
#   ASG_TORCH_VERSION   e.g. 2.14.1+cu130
#   ASG_WITH_CUDA       ON when the CUDA path is compiled (CUDA language enabled, ASG_WITH_CUDA=1 defined)
#
# -DASG_PYTHON=<python> builds against the LibTorch of another environment (e.g. a CPU wheel's).
set(ASG_CUDA AUTO CACHE STRING "Compile the CUDA path: AUTO (when LibTorch has CUDA and nvcc is found), ON, OFF")
set_property(CACHE ASG_CUDA PROPERTY STRINGS AUTO ON OFF)
if(NOT ASG_CUDA MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "ASG_CUDA=${ASG_CUDA}: not a choice (valid: AUTO, ON, OFF)")
endif()
set(ASG_PYTHON "${CMAKE_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
    "Python of the reference environment (scripts/setup.sh makes .venv from requirements.lock)")

if(NOT EXISTS "${ASG_PYTHON}")
  message(FATAL_ERROR "ASG_PYTHON=${ASG_PYTHON} does not exist. Run ./scripts/setup.sh (it makes .venv with the pinned "
                      "PyTorch wheel whose LibTorch the build links), or pass -DASG_PYTHON=<python with torch>.")
endif()

# What the wheel says of itself: its version, CUDA, C++ ABI, CMake prefix, and where pip put NVIDIA's
# CUDA 13 wheels (nvcc, headers, libraries in one nvidia/cu13 folder).
execute_process(
  COMMAND "${ASG_PYTHON}" -c [=[
import json, os, sys
import torch, torch.utils
nvidia = None
try:
    import nvidia
    for base in nvidia.__path__:
        cand = os.path.join(base, "cu" + (torch.version.cuda or "").split(".")[0])
        if torch.version.cuda and os.path.isfile(os.path.join(cand, "bin", "nvcc")):
            nvidia = cand
except ImportError:
    pass
print(json.dumps({"version": torch.__version__, "cuda": torch.version.cuda or "",
                  "cxx11_abi": bool(torch._C._GLIBCXX_USE_CXX11_ABI),
                  "prefix": torch.utils.cmake_prefix_path, "nvidia": nvidia or ""}))
]=]
  RESULT_VARIABLE asg_torch_query_rc OUTPUT_VARIABLE asg_torch_query ERROR_VARIABLE asg_torch_query_err
  OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT asg_torch_query_rc EQUAL 0)
  message(FATAL_ERROR "${ASG_PYTHON} could not import torch:\n${asg_torch_query_err}\nRun ./scripts/setup.sh.")
endif()
string(JSON ASG_TORCH_VERSION GET "${asg_torch_query}" version)
string(JSON asg_torch_cuda GET "${asg_torch_query}" cuda)
string(JSON asg_torch_abi GET "${asg_torch_query}" cxx11_abi)
string(JSON asg_torch_prefix GET "${asg_torch_query}" prefix)
string(JSON asg_nvidia_root GET "${asg_torch_query}" nvidia)

if(NOT asg_torch_abi)
  message(FATAL_ERROR "The LibTorch of ${ASG_PYTHON} (torch ${ASG_TORCH_VERSION}) uses the pre-C++11 ABI "
                      "(torch._C._GLIBCXX_USE_CXX11_ABI is False), but the Debian libraries ASG Lab links (fmt, "
                      "Boost, OpenCV, toml++) use the C++11 ABI: use the wheel pinned in requirements.lock.")
endif()
if(ASG_TORCH_VERSION VERSION_LESS 2.0)
  message(FATAL_ERROR "The LibTorch of ${ASG_PYTHON} is torch ${ASG_TORCH_VERSION}, but ASG Lab needs torch >= 2.0 "
                      "(at::scaled_dot_product_attention): use the wheel pinned in requirements.lock (./scripts/setup.sh).")
endif()
set(Torch_DIR "${asg_torch_prefix}/Torch" CACHE PATH "LibTorch's CMake config (from ASG_PYTHON's torch)" FORCE)

# A CUDA toolkit root for nvcc and TorchConfig's find_package(CUDAToolkit). NVIDIA's wheels ship the
# libraries only with their SONAME (libcudart.so.13), which find_library does not match, and in lib/, where
# nvcc looks in lib64/; so the build assembles a toolkit-shaped folder of links to the wheel's files. bin/ is
# a real folder of links, not a link: nvcc finds its libraries at <the folder it was called from>/../lib64,
# and the `..` of a linked folder would lead back into the wheel.
function(asg_toolkit_from_wheel wheel_root out_dir)
  file(MAKE_DIRECTORY "${out_dir}/lib64")
  if(IS_SYMLINK "${out_dir}/bin")
    file(REMOVE "${out_dir}/bin")
  endif()
  file(MAKE_DIRECTORY "${out_dir}/bin")
  file(GLOB tools RELATIVE "${wheel_root}/bin" "${wheel_root}/bin/*")
  foreach(tool ${tools})
    if(NOT EXISTS "${out_dir}/bin/${tool}")
      file(CREATE_LINK "${wheel_root}/bin/${tool}" "${out_dir}/bin/${tool}" SYMBOLIC)
    endif()
  endforeach()
  foreach(sub include nvvm)
    if(NOT EXISTS "${out_dir}/${sub}")
      file(CREATE_LINK "${wheel_root}/${sub}" "${out_dir}/${sub}" SYMBOLIC)
    endif()
  endforeach()
  file(GLOB libs "${wheel_root}/lib/lib*.so*" "${wheel_root}/lib/lib*.a")
  foreach(lib ${libs})
    get_filename_component(name "${lib}" NAME)
    string(REGEX REPLACE "\\.so\\..*$" ".so" unversioned "${name}")
    foreach(link_name ${name} ${unversioned})
      if(NOT EXISTS "${out_dir}/lib64/${link_name}")
        file(CREATE_LINK "${lib}" "${out_dir}/lib64/${link_name}" SYMBOLIC)
      endif()
    endforeach()
  endforeach()
  # nvcc.profile expects <root>/lib64/stubs; the wheel has no driver stub (the driver comes with the GPU).
  file(MAKE_DIRECTORY "${out_dir}/lib64/stubs")
endfunction()

set(asg_toolkit_root "")
if(asg_torch_cuda)
  if(DEFINED CUDAToolkit_ROOT)
    set(asg_toolkit_root "${CUDAToolkit_ROOT}")
  elseif(asg_nvidia_root)
    set(asg_toolkit_root "${CMAKE_BINARY_DIR}/cuda-toolkit")
    asg_toolkit_from_wheel("${asg_nvidia_root}" "${asg_toolkit_root}")
  elseif(EXISTS /usr/local/cuda/bin/nvcc)
    set(asg_toolkit_root /usr/local/cuda)
  endif()
endif()

if(ASG_CUDA STREQUAL "ON")
  if(NOT asg_torch_cuda)
    message(FATAL_ERROR "ASG_CUDA=ON, but the LibTorch of ${ASG_PYTHON} (torch ${ASG_TORCH_VERSION}) is a CPU build "
                        "(torch.version.cuda is None): it has no libtorch_cuda to link. Use the CUDA wheel pinned in "
                        "requirements.lock (./scripts/setup.sh), or ASG_CUDA=AUTO/OFF.")
  endif()
  if(NOT asg_toolkit_root OR NOT EXISTS "${asg_toolkit_root}/bin/nvcc")
    message(FATAL_ERROR "ASG_CUDA=ON, but no nvcc was found for CUDA ${asg_torch_cuda} (looked for the pinned "
                        "nvidia-cuda-nvcc wheel in ${ASG_PYTHON}'s environment, CUDAToolkit_ROOT, /usr/local/cuda). "
                        "Run ./scripts/setup.sh, set -DCUDAToolkit_ROOT=<toolkit>, or use ASG_CUDA=AUTO/OFF.")
  endif()
endif()
if(asg_torch_cuda AND NOT asg_toolkit_root)
  # TorchConfig of a CUDA LibTorch needs the toolkit's headers and libraries even for a CPU-only build.
  message(FATAL_ERROR "The LibTorch of ${ASG_PYTHON} (torch ${ASG_TORCH_VERSION}) is a CUDA ${asg_torch_cuda} build, "
                      "and its CMake config needs a CUDA toolkit (nvcc, cudart, cuBLAS headers), which was not found: run "
                      "./scripts/setup.sh (it installs the pinned toolkit wheels) or set -DCUDAToolkit_ROOT=<toolkit>.")
endif()
if(asg_toolkit_root)
  set(CUDAToolkit_ROOT "${asg_toolkit_root}")
  set(CUDA_TOOLKIT_ROOT_DIR "${asg_toolkit_root}")  # Caffe2's config also runs the older FindCUDA
  set(CMAKE_CUDA_COMPILER "${asg_toolkit_root}/bin/nvcc")
  # Named, so that TorchConfig does not compile and run a probe for the GPUs of the build machine (there
  # are none on the build machines, and the binary is meant for the machine that runs it).
  if(NOT DEFINED TORCH_CUDA_ARCH_LIST)
    set(TORCH_CUDA_ARCH_LIST "8.0;9.0")
  endif()
endif()

find_package(Torch REQUIRED)

set(ASG_WITH_CUDA OFF)
if(asg_torch_cuda AND asg_toolkit_root AND NOT ASG_CUDA STREQUAL "OFF")
  set(ASG_WITH_CUDA ON)
  # After TorchConfig, which would otherwise warn about and clear CMAKE_CUDA_ARCHITECTURES (its own flags go
  # to the older FindCUDA's variables, which CUDA-language targets do not read). sm_80 (A100, the paper's
  # cards) and sm_90 (H100/H200) as machine code, PTX of sm_90 for newer cards.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR NOT CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 80-real 90)
  endif()
  # One CUDA runtime in the process: LibTorch's shared libcudart, not a static copy per library.
  set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
  enable_language(CUDA)
  # LibTorch 2.x headers need C++20, and CMake 3.25 does not know nvcc's flag for it (nvcc 12+ has it).
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA_STANDARD 20)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
endif()
message(STATUS "ASG Lab: LibTorch ${ASG_TORCH_VERSION} from ${ASG_PYTHON}; CUDA path compiled: ${ASG_WITH_CUDA} "
               "(ASG_CUDA=${ASG_CUDA}, toolkit: ${asg_toolkit_root})")
