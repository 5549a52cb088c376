// C shim over libtorch's own c10d: TCPStore rendezvous, ProcessGroupGloo (CPU) and, when built
// with -DIJEPA_NCCL (cargo feature `nccl`), ProcessGroupNCCL (CUDA). Nothing here implements a
// collective: every call forwards to the c10d backend and waits on its Work.
//
// Error convention: every extern "C" function catches all C++ exceptions and returns a
// malloc'ed, NUL-terminated message (free it with ijepa_shim_free, shim.cpp), or NULL on success.
// A C++ exception never crosses into Rust.
//
// Tensors are tch handles: in torch-sys a `tensor` is a `torch::Tensor*` (= at::Tensor*), so we
// take them as `void*` and run the collectives in place on the caller's storage.
//
// c10d classes have no stable ABI: this file must be compiled against the headers of the very
// torch it links (torch 2.11.0, pinned in scripts/env.sh).
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#ifdef IJEPA_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <c10/util/Logging.h>

#include "ffi.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

struct Pg {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  int rank = 0;
  int world = 1;
  bool nccl = false;
  std::chrono::milliseconds timeout{30000};
};

using ijepa_ffi::dup;
using ijepa_ffi::guarded;
using ijepa_ffi::tensor_of;

Pg& pg_of(void* pg) {
  if (pg == nullptr) throw std::invalid_argument("null process group handle");
  return *static_cast<Pg*>(pg);
}

// While a process group forms, c10d logs every failed attempt (a connect retry with the C++
// stack trace of its exception: ~50 lines for one missing master) before the exception that
// the caller turns into one message naming the cause. This keeps c10's log level at FATAL for
// that time, unless TORCH_CPP_LOG_LEVEL asks for c10d's own lines.
class QuietRendezvous {
 public:
  QuietRendezvous() : saved_(FLAGS_caffe2_log_level), active_(std::getenv("TORCH_CPP_LOG_LEVEL") == nullptr) {
    if (active_ && saved_ < c10::GLOG_FATAL) FLAGS_caffe2_log_level = c10::GLOG_FATAL;
  }
  ~QuietRendezvous() {
    if (active_) FLAGS_caffe2_log_level = saved_;
  }
  QuietRendezvous(const QuietRendezvous&) = delete;
  QuietRendezvous& operator=(const QuietRendezvous&) = delete;

 private:
  int saved_;
  bool active_;
};

// Waits on a Work item with the group's timeout; a timeout or a backend failure throws.
void wait_for(const Pg& pg, const c10::intrusive_ptr<c10d::Work>& work) {
  if (!work->wait(pg.timeout)) {
    throw std::runtime_error("the operation did not complete within " +
                             std::to_string(pg.timeout.count()) + " ms");
  }
}

// op: 0 = SUM, 1 = AVG. ProcessGroupGloo implements AVG as SUM then an in-place division by the
// world size (ProcessGroupGlooDetail.hpp); NCCL does it natively.
c10d::ReduceOp reduce_op(int op) {
  if (op == 0) return c10d::ReduceOp::SUM;
  if (op == 1) return c10d::ReduceOp::AVG;
  throw std::invalid_argument("unknown reduce op " + std::to_string(op));
}

}  // namespace

extern "C" {

int ijepa_c10d_has_nccl() {
#ifdef IJEPA_NCCL
  return 1;
#else
  return 0;
#endif
}

// Creates a process group.
//   backend      "gloo" | "nccl"
//   master_addr  host of the TCPStore server (rank 0 binds it, others connect to it)
//   gloo_iface   if non-empty: Gloo binds this network interface (createDeviceForInterface)
//   gloo_host    else if non-empty: Gloo binds the address this hostname/IP resolves to
//                (createDeviceForHostname); else createDefaultDevice (this machine's hostname,
//                falling back to loopback).
//   device_index NCCL only: the CUDA device of this rank (-1: let c10d guess)
//   agent_prefix if non-empty: the store is torchrun's agent's (every rank a client), its keys
//                under this prefix (the attempt's); else rank 0 hosts it
// On failure *phase tells where it failed: 1 = rendezvous store (rank 0: bind/listen; others:
// connect to the master), 2 = transport device, 3 = process group (peers joining / connecting),
// 0 = argument checks. *out receives the handle on success.
char* ijepa_c10d_create(const char* backend, const char* master_addr, int master_port, int rank,
                        int world_size, int64_t timeout_ms, const char* gloo_iface,
                        const char* gloo_host, int device_index, const char* agent_prefix,
                        int* phase, void** out) {
  int dummy_phase = 0;
  if (phase == nullptr) phase = &dummy_phase;
  *phase = 0;
  return guarded([&] {
    if (out == nullptr) throw std::invalid_argument("null output handle");
    *out = nullptr;
    std::string be = backend ? backend : "";
    if (be != "gloo" && be != "nccl") throw std::invalid_argument("unknown backend '" + be + "'");
#ifndef IJEPA_NCCL
    if (be == "nccl") {
      throw std::invalid_argument("this build has no NCCL backend: rebuild with --features nccl");
    }
#endif
    if (world_size < 1 || rank < 0 || rank >= world_size) {
      throw std::invalid_argument("rank " + std::to_string(rank) + " out of range for world size " +
                                  std::to_string(world_size));
    }
    if (master_port < 1 || master_port > 65535) {
      throw std::invalid_argument("master port " + std::to_string(master_port) + " out of range");
    }
    auto timeout = std::chrono::milliseconds(timeout_ms);
    auto pg = std::make_unique<Pg>();
    pg->rank = rank;
    pg->world = world_size;
    pg->timeout = timeout;
    pg->nccl = be == "nccl";

    // Rendezvous. Rank 0 hosts the server; we do not make the server wait for the workers here
    // (waitWorkers=false) so that a failure of this step means "could not bind" on rank 0 and
    // "could not reach the master" elsewhere; waiting for every rank to join is the process
    // group's own rendezvous below, bounded by the same timeout.
    QuietRendezvous quiet;
    *phase = 1;
    // Under torchrun the agent hosts the store on MASTER_PORT and it outlives the workers:
    // every rank is a client (the caller decides, from torchrun's variables), and the keys are
    // under a prefix of the attempt's own (torch.distributed makes a new store each attempt
    // instead); under one prefix, a restarted attempt read the dead ranks' Gloo addresses and
    // never formed its group.
    const bool agent_store = agent_prefix != nullptr && agent_prefix[0] != '\0';
    const std::string prefix = agent_store ? std::string(agent_prefix) : std::string("ijepa/default_pg");
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(master_port);
    so.isServer = rank == 0 && !agent_store;
    so.numWorkers = world_size;
    so.waitWorkers = false;
    so.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(master_addr ? master_addr : ""), so);
    pg->store = c10::make_intrusive<c10d::PrefixStore>(prefix, tcp);

    if (be == "gloo") {
      *phase = 2;
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      std::string iface = gloo_iface ? gloo_iface : "";
      std::string host = gloo_host ? gloo_host : "";
      if (!iface.empty()) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
      } else if (!host.empty()) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host));
      } else {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      *phase = 3;
      pg->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(pg->store, rank, world_size, opts);
    }
#ifdef IJEPA_NCCL
    if (be == "nccl") {
      *phase = 3;
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      auto nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(pg->store, rank, world_size, opts);
      if (device_index >= 0) {
        c10::cuda::set_device(static_cast<c10::DeviceIndex>(device_index));
        nccl->setBoundDeviceId(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device_index)));
      }
      pg->backend = nccl;
    }
#else
    (void)device_index;
#endif
    *phase = 0;
    *out = pg.release();
  });
}

// Destroys a process group (NULL is a no-op). Never throws.
char* ijepa_c10d_destroy(void* pg) {
  return guarded([&] {
    if (pg == nullptr) return;
    auto* p = static_cast<Pg*>(pg);
    // NCCL: tear the communicators down explicitly, as destroy_process_group does.
    if (p->nccl && p->backend) p->backend->shutdown();
    delete p;
  });
}

// In-place all-reduce of one tensor. op: 0 = SUM, 1 = AVG.
char* ijepa_c10d_allreduce(void* pg, void* t, int op) {
  return guarded([&] {
    auto& p = pg_of(pg);
    std::vector<at::Tensor> ts{tensor_of(t)};
    c10d::AllreduceOptions o;
    o.reduceOp = reduce_op(op);
    o.timeout = p.timeout;
    wait_for(p, p.backend->allreduce(ts, o));
  });
}

// In-place all-reduce of n tensors of one dtype and device in one collective.
char* ijepa_c10d_allreduce_coalesced(void* pg, void* const* ts, int n, int op) {
  return guarded([&] {
    auto& p = pg_of(pg);
    if (n < 0 || (n > 0 && ts == nullptr)) throw std::invalid_argument("bad tensor list");
    std::vector<at::Tensor> v;
    v.reserve(n);
    for (int i = 0; i < n; ++i) v.push_back(tensor_of(ts[i]));
    if (v.empty()) return;
    c10d::AllreduceCoalescedOptions o;
    o.reduceOp = reduce_op(op);
    o.timeout = p.timeout;
    wait_for(p, p.backend->allreduce_coalesced(v, o));
  });
}

// In-place broadcast of `t` from rank `root`.
char* ijepa_c10d_broadcast(void* pg, void* t, int root) {
  return guarded([&] {
    auto& p = pg_of(pg);
    std::vector<at::Tensor> ts{tensor_of(t)};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.rootTensor = 0;
    o.timeout = p.timeout;
    wait_for(p, p.backend->broadcast(ts, o));
  });
}

// All-gather into a contiguous `output` of world_size * input.numel() elements (same dtype).
char* ijepa_c10d_allgather(void* pg, void* output, void* input) {
  return guarded([&] {
    auto& p = pg_of(pg);
    c10d::AllgatherOptions o;
    o.timeout = p.timeout;
    wait_for(p, p.backend->_allgather_base(tensor_of(output), tensor_of(input), o));
  });
}

// Blocks until every rank reached the barrier (or the timeout).
char* ijepa_c10d_barrier(void* pg) {
  return guarded([&] {
    auto& p = pg_of(pg);
    c10d::BarrierOptions o;
    o.timeout = p.timeout;
    wait_for(p, p.backend->barrier(o));
  });
}

}  // extern "C"
