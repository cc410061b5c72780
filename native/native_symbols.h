// Names for addresses in native code (the node binary, shared libraries), from the ELF
// symbol tables of the object files on disk: .symtab (.dynsym where an object has none),
// so that static and hidden functions (V8's ieee754 code, most of node and V8) are named,
// not only what dladdr sees. Also what a pprof Mapping needs: the object's path, build
// id and the executable segment the address is in, so that `go tool pprof` can symbolize
// what we could not.
//
// One table per process (objects are shared by every isolate), with its own lock. Each
// object is read once, the first time one of its addresses is resolved or preloaded
// (the collector thread preloads the executable before it resolves anything); never in
// the signal handler. The file stays mapped read-only: the symbol table and the names
// are read from it in place, and its pages are the page cache's, not the process's heap.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sigprof {

struct NativeMapping {
  uint32_t id;          // 1-based, stable for the process
  std::string path;
  std::string build_id; // lowercase hex, empty if the object has none
  uintptr_t start, limit, offset;  // the loadable segment, page-rounded (as /proc/self/maps shows it)
};

struct NativeResolution {
  uint32_t mapping = 0;   // 0: not inside any loaded object
  std::string name;       // demangled, without parameters; empty if no symbol covers it
  uintptr_t symbol = 0;   // runtime address of the symbol's start
  std::string path;       // the object file
};

class NativeSymbols {
 public:
  static NativeSymbols& Get();

  NativeResolution Resolve(uintptr_t addr);
  // Reads the executable's tables now, so the first resolution does not wait for them.
  void PreloadExecutable();
  std::vector<NativeMapping> Mappings();

 private:
  struct Segment {
    uintptr_t start = 0, limit = 0, offset = 0;  // runtime, page-rounded; file offset
  };
  // The functions of one symbol table, indexed by address without sorting them: the
  // table's entries stay in the mapped file; `index` lists the positions of the function
  // symbols bucket by bucket (a bucket is 2^shift bytes of addresses; within one, the
  // table's order), `bucket_start` where each bucket begins in it. A lookup scans one
  // bucket (a few symbols) and, when that holds none at or below the address, the
  // nearest non-empty one before it.
  struct Object {
    std::string path;
    std::string build_id;
    uintptr_t bias = 0;  // runtime address - link-time address
    void* map = nullptr;
    size_t map_size = 0;
    uint64_t symtab = 0;   // file offset of the Elf64_Sym array
    uint64_t strtab = 0, strtab_size = 0;
    uintptr_t lo = 0;      // link-time address of bucket 0
    unsigned shift = 0;
    std::vector<uint32_t> bucket_start;  // buckets + 1 entries
    std::vector<uint32_t> index;         // symbol numbers, grouped by bucket
  };
  struct Sym {  // one Elf64_Sym's fields that a lookup needs
    uintptr_t value;  // link-time address
    uint64_t size;
    uint32_t name;    // offset in the string table
  };
  Object* LoadLocked(const std::string& path, uintptr_t base);
  static void IndexSymbols(Object* o, const unsigned char* file, uint64_t count, uintptr_t lo, uintptr_t hi,
                           uint64_t strtab_size);
  static Sym SymAt(const Object* o, uint32_t i);
  static size_t BucketOf(const Object* o, uintptr_t link);
  // The symbol whose range holds `link` (link-time address), if any.
  static bool Lookup(const Object* o, uintptr_t link, Sym* out);
  uint32_t MappingLocked(Object* obj, const Segment& seg);

  std::mutex mu_;
  std::vector<std::unique_ptr<Object>> objects_;
  std::vector<NativeMapping> mappings_;
  std::vector<Object*> mapping_objects_;
  std::string exe_;
};

// "ns::Class::method" from a mangled C++ symbol (parameters and return type dropped);
// the symbol itself if it is not a mangled C++ name.
std::string DemangleSymbol(const char* sym);

}  // namespace sigprof
