"""cffi build script for fastad's C kernel (out-of-line API mode).

setup.py names it in `cffi_modules`, so `pip install .` compiles `fastad._kernel`.
The cdef below is the kernel's whole Python-visible surface; `...;` lets the C compiler
fix the struct layout, so it cannot drift from csrc/vm.h.

FASTAD_CFLAGS adds compiler flags (e.g. "-march=native" for a local build; a wheel
built so runs only on CPUs like this one).  FASTAD_SANITIZE=1 builds with AddressSanitizer
and UndefinedBehaviorSanitizer (see the README for running the tests under it).
"""
import os
import shlex

import cffi
import numpy
import scipy_openblas32

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CDEF = """
typedef struct {
    int32_t op; int32_t dtype; int32_t out; int32_t a; int32_t b; int32_t ndim;
    int64_t shape[...]; int64_t sa[...]; int64_t sb[...]; int64_t so[...];
    int64_t n; int64_t m; int64_t k; int32_t trans_a; int32_t trans_b; double c;
    int32_t group; int32_t fast; int32_t x; int64_t sx[...]; int64_t oa; int64_t ob;
    int64_t ox; int64_t oo; double c2; int64_t geom[...]; ...;
} fa_instr;
typedef struct { int32_t threads; int32_t interruptible; int64_t *ns; ...; } fa_opts;
extern const char *const fa_opcode_names[];
extern const char *const fa_opcode_kinds[];
extern const int fa_num_opcodes;
extern const int fa_maxdim;
extern const int fa_block;
int fa_validate(fa_instr *prog, int64_t n_instr, const int64_t *slot_bytes,
                int32_t n_slots, int64_t *bad);
const char *fa_error_message(int code);
double fa_work(const fa_instr *prog, int64_t n_instr);
int fa_run(const fa_instr *prog, int64_t start, int64_t end, char *const *slots,
           const fa_opts *opts);
typedef struct { const fa_instr *prog; int64_t n_instr; char *const *slots; ...; } fa_shard;
int fa_run_shards(const fa_shard *shards, int64_t n, int32_t threads, int32_t interruptible);
int fa_sigint_begin(void);
int fa_sigint_end(void);
int fa_pool_workers(void);
enum { FA_STREAM_POINT, FA_STREAM_CELL, FA_STREAM_GATHER };
typedef struct { int32_t slot; int32_t kind; int32_t by_step; int64_t stride; int64_t bytes;
                 const char *base; ...; } fa_stream;
typedef struct { const fa_instr *prog; int64_t n_instr; char **slots; int32_t n_streams;
                 const fa_stream *streams; const int64_t *order; int64_t batch;
                 int64_t epoch_steps;
                 int32_t loss_slot; int32_t loss_f64; int32_t interruptible;
                 fa_opts run_opts; ...; } fa_train_job;
int64_t fa_train(const fa_train_job *job, int64_t first, int64_t count, double *history);
void fa_set_blas_threads(int n);
int fa_simd_isa(int want);
int fa_conv_path(const fa_instr *ins);
extern const char *const fa_loop_names[];
extern const int fa_num_loops;
int fa_bind_numpy_loop(int loop, int dtype, uintptr_t ufunc);
int fa_use_own_loop(int loop, int dtype);
int fa_loop_origin(int loop, int dtype);
typedef struct { uintptr_t array; ...; } fa_feed;
int fa_feed_bind(fa_feed *f, uintptr_t array, char **slot);
int32_t fa_feeds_changed(const fa_feed *f, int32_t n);
"""

HEADERS = ["vm.h", "opcodes.h", "kinds.h", "kernels.h", "loops.h", "pool.h", "train.h", "vmath.h",
           "feeds.h", "simd.h", "simd_kernels.h", "conv_direct.h", "maxpool2.h"]
SOURCES = ["vm.c", "run.c", "loops.c", "pool.c", "train.c", "feeds.c"]

# -fno-wrapv undoes Python's -fwrapv, so that UBSan reports signed overflow too
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
            "-fno-omit-frame-pointer", "-fno-wrapv", "-g"
            ] if os.environ.get("FASTAD_SANITIZE") else []

ffibuilder = cffi.FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "fastad._kernel",
    '#include "vm.h"\n#include "loops.h"\n#include "pool.h"\n#include "train.h"\n#include "feeds.h"',
    # relative to the project root, where setup.py runs: absolute paths would end up
    # in the sdist's SOURCES and break builds from it
    sources=[os.path.relpath(os.path.join(HERE, name), ROOT) for name in SOURCES],
    depends=[os.path.relpath(os.path.join(HERE, h), ROOT) for h in HEADERS],
    # numpy's headers for loops.c (numpy's ufunc loop tables) and feeds.c (array fields)
    include_dirs=[HERE, scipy_openblas32.get_include_dir(), numpy.get_include()],
    library_dirs=[scipy_openblas32.get_lib_dir()],
    libraries=[scipy_openblas32.get_library(), "m", "pthread"],
    # an installed kernel finds the BLAS library in the scipy_openblas32 package beside it
    extra_link_args=["-Wl,-rpath,$ORIGIN/../scipy_openblas32/lib"] + SANITIZE,
    # -fno-trapping-math lets selects vectorise; it changes no result (only which
    # floating-point exception flags get raised, which fastad never reads).
    # -falign-loops=64: loops start on a cache line, so that the dispatch loop's speed
    # does not move with unrelated code before it (a 48-byte shift had cost W6 8 %)
    extra_compile_args=["-O3", "-std=gnu11", "-ffp-contract=off", "-fno-math-errno",
                        "-fno-trapping-math", "-falign-loops=64", "-Wall", "-Wextra",
                        "-Wno-unused-parameter"]
    + SANITIZE + shlex.split(os.environ.get("FASTAD_CFLAGS", "")),
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
