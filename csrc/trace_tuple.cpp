// Ends a trace started by torch-sys's atm_create_for_tracing with ONE output: a tuple of the
// given tensors. libtch's atm_end_tracing registers each tensor as its own graph output, and
// TorchScript refuses to save a method with several ("Exportable methods must have a single
// return value"), so tch alone cannot export `x -> (mu, log_var)`. This mirrors
// atm_end_tracing (torch-sys 0.24, libtch/torch_api.cpp) with a prim::TupleConstruct added.
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/passes/fixup_trace_scope_blocks.h>
#include <torch/csrc/jit/passes/normalize_ops.h>

// Returns nullptr on success, else an error message valid until the next call on this thread.
extern "C" const char *vae_tch_end_tracing_tuple(void *module, const char *fn_name,
                                                 void **outputs, int noutputs) {
  thread_local std::string error;
  try {
    auto *m = static_cast<torch::jit::Module *>(module);
    auto state = torch::jit::tracer::getTracingState();
    if (state == nullptr) throw std::invalid_argument("not in tracing mode");
    std::vector<torch::jit::Value *> values;
    for (int i = 0; i < noutputs; ++i) {
      values.push_back(state->getOutput(*static_cast<at::Tensor *>(outputs[i]), i));
    }
    auto *tuple = state->graph->insertNode(state->graph->createTuple(values))->output();
    state->graph->registerOutput(tuple);
    torch::jit::FixupTraceScopeBlocks(state->graph, m);
    torch::jit::NormalizeOps(state->graph);
    torch::jit::tracer::setTracingState(nullptr);
    auto fn = m->_ivalue()->compilation_unit()->create_function(fn_name, state->graph);
    m->type()->addMethod(fn);
    return nullptr;
  } catch (const std::exception &e) {
    torch::jit::tracer::setTracingState(nullptr);
    error = e.what();
    return error.c_str();
  }
}
