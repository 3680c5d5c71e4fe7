// See cmake/TorchCuda.cmake: thread stacks vs. static TLS (glibc bug 11787). Linked into
// every executable of a CUDA build.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>

typedef int (*rlhf_setstacksize_fn)(pthread_attr_t *, size_t);
typedef size_t (*rlhf_minstack_fn)(const pthread_attr_t *);

__attribute__((visibility("default"))) int pthread_attr_setstacksize(pthread_attr_t *attr,
                                                                     size_t size) {
  static rlhf_setstacksize_fn real;
  static rlhf_minstack_fn minstack;
  rlhf_setstacksize_fn set = __atomic_load_n(&real, __ATOMIC_ACQUIRE);
  if (!set) {
    __atomic_store_n(&minstack, (rlhf_minstack_fn)dlsym(RTLD_DEFAULT, "__pthread_get_minstack"),
                     __ATOMIC_RELAXED);
    set = (rlhf_setstacksize_fn)dlsym(RTLD_NEXT, "pthread_attr_setstacksize");
    __atomic_store_n(&real, set, __ATOMIC_RELEASE);
  }
  rlhf_minstack_fn min = __atomic_load_n(&minstack, __ATOMIC_RELAXED);
  size_t extra = min ? min(attr) : 0;
  if (size <= SIZE_MAX - extra) size += extra;
  return set(attr, size);
}
