#include "asg/flop_counter.h"

#include <ATen/core/ivalue.h>

#include <atomic>
#include <cstring>

#include "asg/error.h"

namespace asg {

namespace {

std::atomic<bool> g_active{false};
std::atomic<double> g_flops{0};

int64_t product(c10::IntArrayRef xs, size_t from = 0) {
  int64_t p = 1;
  for (size_t i = from; i < xs.size(); ++i) p *= xs[i];
  return p;
}

c10::IntArrayRef sizes_of(const c10::IValue& v) { return v.toTensor().sizes(); }

bool is_tensor(c10::ArrayRef<const c10::IValue> inputs, size_t i) { return i < inputs.size() && inputs[i].isTensor(); }

// Forward FLOPs of a convolution from its input, weight and the output's spatial size.
// weight is [Cout, Cin/groups, k...] (transposed: [Cin, Cout/groups, k...]), so groups are in its shape.
double conv_flops(c10::IntArrayRef input, c10::IntArrayRef weight, c10::IntArrayRef output, bool transposed) {
  const double kernel = static_cast<double>(product(weight, 2));
  if (transposed) return 2.0 * input[0] * product(input, 2) * input[1] * weight[1] * kernel;
  return 2.0 * output[0] * output[1] * product(output, 2) * weight[1] * kernel;
}

// The output size of a (non-transposed) convolution: floor((in + 2p - d(k-1) - 1) / s) + 1 per spatial dim.
std::vector<int64_t> conv_output(c10::IntArrayRef input, c10::IntArrayRef weight, c10::IntArrayRef stride,
                                 c10::IntArrayRef padding, c10::IntArrayRef dilation) {
  std::vector<int64_t> out{input[0], weight[0]};
  for (size_t i = 2; i < input.size(); ++i) {
    const size_t j = i - 2;
    const int64_t s = stride.size() > j ? stride[j] : stride[0], p = padding.size() > j ? padding[j] : padding[0],
                  d = dilation.size() > j ? dilation[j] : dilation[0];
    out.push_back((input[i] + 2 * p - d * (weight[i] - 1) - 1) / s + 1);
  }
  return out;
}

double count(const at::RecordFunction& fn) {
  const char* name = fn.name();
  if (std::strncmp(name, "aten::", 6) != 0) return 0;
  name += 6;
  const auto inputs = fn.inputs();
  if (std::strcmp(name, "mm") == 0 && is_tensor(inputs, 1)) {
    auto a = sizes_of(inputs[0]), b = sizes_of(inputs[1]);
    return 2.0 * a[0] * a[1] * b[1];
  }
  if (std::strcmp(name, "addmm") == 0 && is_tensor(inputs, 2)) {
    auto a = sizes_of(inputs[1]), b = sizes_of(inputs[2]);
    return 2.0 * a[0] * a[1] * b[1];
  }
  if (std::strcmp(name, "bmm") == 0 && is_tensor(inputs, 1)) {
    auto a = sizes_of(inputs[0]), b = sizes_of(inputs[1]);
    return 2.0 * a[0] * a[1] * a[2] * b[2];
  }
  if (std::strcmp(name, "baddbmm") == 0 && is_tensor(inputs, 2)) {
    auto a = sizes_of(inputs[1]), b = sizes_of(inputs[2]);
    return 2.0 * a[0] * a[1] * a[2] * b[2];
  }
  if (std::strcmp(name, "convolution") == 0 && inputs.size() >= 9 && is_tensor(inputs, 1)) {
    // (input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
    auto input = sizes_of(inputs[0]), weight = sizes_of(inputs[1]);
    const bool transposed = inputs[6].toBool();
    const auto out = transposed ? std::vector<int64_t>{} :
                                  conv_output(input, weight, inputs[3].toIntVector(), inputs[4].toIntVector(), inputs[5].toIntVector());
    return conv_flops(input, weight, out, transposed);
  }
  if (std::strcmp(name, "convolution_backward") == 0 && inputs.size() >= 11 && is_tensor(inputs, 2)) {
    // (grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed, output_padding, groups, output_mask)
    auto grad_output = sizes_of(inputs[0]), input = sizes_of(inputs[1]), weight = sizes_of(inputs[2]);
    const bool transposed = inputs[7].toBool();
    const double forward = conv_flops(input, weight, grad_output, transposed);
    const auto mask = inputs[10].toBoolList();
    return forward * ((mask.size() > 0 && mask[0] ? 1 : 0) + (mask.size() > 1 && mask[1] ? 1 : 0));
  }
  const bool sdpa = std::strcmp(name, "_scaled_dot_product_flash_attention") == 0 ||
                    std::strcmp(name, "_scaled_dot_product_efficient_attention") == 0;
  const bool sdpa_backward = std::strcmp(name, "_scaled_dot_product_flash_attention_backward") == 0 ||
                             std::strcmp(name, "_scaled_dot_product_efficient_attention_backward") == 0;
  if (sdpa || sdpa_backward) {
    // forward (query, key, value, ...); backward (grad_out, query, key, value, ...): [B, H, L, d]
    const size_t q = sdpa ? 0 : 1;
    if (!is_tensor(inputs, q + 1)) return 0;
    auto query = sizes_of(inputs[q]), key = sizes_of(inputs[q + 1]);
    const double forward = 4.0 * query[0] * query[1] * query[2] * key[2] * query[3];
    return sdpa ? forward : 2.5 * forward;
  }
  return 0;
}

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  const double f = count(fn);
  if (f > 0) {
    double seen = g_flops.load(std::memory_order_relaxed);
    while (!g_flops.compare_exchange_weak(seen, seen + f, std::memory_order_relaxed)) {
    }
  }
  return nullptr;
}

}  // namespace

FlopCounter::FlopCounter() {
  bool expected = false;
  if (!g_active.compare_exchange_strong(expected, true)) throw internal_error("a FlopCounter is already counting");
  g_flops = 0;
  handle_ = at::addGlobalCallback(at::RecordFunctionCallback(on_start).needsInputs(true).scopes({at::RecordScope::FUNCTION}));
}

FlopCounter::~FlopCounter() {
  at::removeCallback(handle_);
  g_active = false;
}

double FlopCounter::flops() const { return g_flops.load(); }

}  // namespace asg
