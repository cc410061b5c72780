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
// the signal handler. The file stays mapped read-only: symbol names point into it, and
// its pages are the page cache's, not the process's heap.
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
  uintptr_t start, limit, offset;  // the executable segment, as in /proc/self/maps
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
  // 16 bytes each: node has ~86k functions (78k addresses).
  struct Symbol {
    uintptr_t value;  // file (link-time) address
    uint32_t size;
    uint32_t name;    // file offset of the name
  };
  struct Object {
    std::string path;
    std::string build_id;
    uintptr_t bias = 0;  // runtime address - link-time address
    std::vector<Symbol> symbols;  // functions, sorted by value
    void* map = nullptr;
    size_t map_size = 0;
  };
  Object* LoadLocked(const std::string& path, uintptr_t base);
  static void SortByValue(std::vector<Symbol>* symbols);
  uint32_t MappingLocked(Object* obj, uintptr_t addr);

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
