#include "native_symbols.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sigprof {

namespace {

// Everything read from the file is bounds-checked: a truncated or odd object gets no
// symbols, never a crash.
bool InFile(size_t size, uint64_t off, uint64_t len) { return off <= size && len <= size - off; }

std::string Hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; i++) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

std::string SelfExe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return std::string();
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

std::string DemangleSymbol(const char* sym) {
  int status = 0;
  char* d = abi::__cxa_demangle(sym, nullptr, nullptr, &status);
  if (status != 0 || !d) return sym;
  std::string out(d);
  free(d);
  // Keep the qualified name: drop the parameter list and, for templates, the return
  // type in front ("Handle<String> StringTable::LookupKey<...>(...)"). "(anonymous
  // namespace)" is part of the name, not a parameter list.
  static const char kAnon[] = "(anonymous namespace)";
  int depth = 0;
  size_t name_start = 0, end = out.size();
  for (size_t i = 0; i < out.size(); i++) {
    char c = out[i];
    if (c == '(' && out.compare(i, sizeof kAnon - 1, kAnon) == 0) {
      i += sizeof kAnon - 2;
      continue;
    }
    if (c == '<') depth++;
    else if (c == '>') depth--;
    else if (depth == 0 && c == ' ') name_start = i + 1;
    else if (depth == 0 && c == '(' && i > 0) {
      end = i;
      break;
    }
  }
  if (name_start >= end) name_start = 0;
  std::string name = out.substr(name_start, end - name_start);
  // "(anonymous namespace)::" says nothing a reader needs, and pprof deletes the
  // parenthesised part, leaving "ieee754::::__kernel_rem_pio2".
  static const char kAnonScope[] = "(anonymous namespace)::";
  for (size_t at; (at = name.find(kAnonScope)) != std::string::npos;) name.erase(at, sizeof kAnonScope - 1);
  return name;
}

NativeSymbols& NativeSymbols::Get() {
  // Leaked on purpose: Workers and exit-time cleanup hooks may still resolve.
  static NativeSymbols* instance = new NativeSymbols();
  return *instance;
}

// The loaded object holding an address, from the dynamic linker's own list: its path
// (the executable's entry comes first and has no name), its load bias and the loadable
// segment the address is in. The segment is the Mapping pprof needs, taken from the
// program header rather than from /proc/self/maps: reading that (hundreds of lines in a
// node process) cost the collector ~0.4 ms per object.
struct FoundObject {
  uintptr_t addr;
  int index = 0;
  bool found = false;
  bool executable = false;
  std::string path;
  uintptr_t bias = 0;
  uintptr_t seg_start = 0, seg_limit = 0, seg_offset = 0;
};

static void SegmentOf(const struct dl_phdr_info* info, const ElfW(Phdr)& ph, FoundObject* f) {
  // The kernel maps a segment at page granularity; p_offset and p_vaddr agree modulo the page.
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
  f->seg_start = lo & ~(page - 1);
  f->seg_limit = (lo + ph.p_memsz + page - 1) & ~(page - 1);
  f->seg_offset = static_cast<uintptr_t>(ph.p_offset) & ~(page - 1);
}

static int FindObject(struct dl_phdr_info* info, size_t, void* data) {
  auto* f = static_cast<FoundObject*>(data);
  bool first = f->index++ == 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    if (f->addr >= lo && f->addr < lo + ph.p_memsz) {
      f->found = true;
      f->executable = first;
      f->path = info->dlpi_name ? info->dlpi_name : "";
      f->bias = info->dlpi_addr;
      SegmentOf(info, ph, f);
      return 1;
    }
  }
  return 0;
}

static FoundObject ObjectOf(uintptr_t addr) {
  FoundObject f;
  f.addr = addr;
  dl_iterate_phdr(FindObject, &f);
  return f;
}

void NativeSymbols::PreloadExecutable() {
  // dl_iterate_phdr lists the executable first; its largest executable segment is its text.
  FoundObject exe;
  dl_iterate_phdr([](struct dl_phdr_info* info, size_t, void* data) {
    auto* f = static_cast<FoundObject*>(data);
    f->found = true;
    f->bias = info->dlpi_addr;
    uint64_t largest = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
      const ElfW(Phdr)& ph = info->dlpi_phdr[i];
      if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X) && ph.p_memsz > largest) {
        largest = ph.p_memsz;
        SegmentOf(info, ph, f);
      }
    }
    return 1;
  }, &exe);
  if (!exe.found) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (exe_.empty()) exe_ = SelfExe();
  if (exe_.empty()) return;
  Object* obj = LoadLocked(exe_, exe.bias);
  // pprof takes the first Mapping for the main binary (`File:` in go tool pprof): the
  // executable's text gets its mapping before any library's.
  if (exe.seg_limit > exe.seg_start) MappingLocked(obj, {exe.seg_start, exe.seg_limit, exe.seg_offset});
}

namespace {
// A defined function with a name inside the string table. The name itself is not read:
// touching every name would page in all of .strtab (7-18 MB for node) for the few
// hundred functions a profile names.
inline bool IsFunction(const unsigned char* sym, uint64_t strtab_size, uintptr_t* value) {
  unsigned type = ELF64_ST_TYPE(sym[offsetof(Elf64_Sym, st_info)]);
  if (type != STT_FUNC && type != STT_GNU_IFUNC) return false;
  uint16_t shndx;
  uint32_t name;
  uint64_t v;
  memcpy(&shndx, sym + offsetof(Elf64_Sym, st_shndx), sizeof shndx);
  memcpy(&name, sym + offsetof(Elf64_Sym, st_name), sizeof name);
  memcpy(&v, sym + offsetof(Elf64_Sym, st_value), sizeof v);
  *value = static_cast<uintptr_t>(v);
  return shndx != SHN_UNDEF && v != 0 && name < strtab_size;
}
}  // namespace

NativeSymbols::Object* NativeSymbols::LoadLocked(const std::string& path, uintptr_t bias) {
  for (const auto& o : objects_) {
    if (o->path == path) return o.get();
  }
  auto obj = std::make_unique<Object>();
  obj->path = path;
  obj->bias = bias;
  Object* o = obj.get();
  objects_.push_back(std::move(obj));
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return o;
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(sizeof(Elf64_Ehdr))) {
    close(fd);
    return o;
  }
  size_t size = static_cast<size_t>(st.st_size);
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return o;
  const unsigned char* file = static_cast<const unsigned char*>(map);
  Elf64_Ehdr eh;
  memcpy(&eh, file, sizeof eh);
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_phentsize != sizeof(Elf64_Phdr) ||
      !InFile(size, eh.e_shoff, static_cast<uint64_t>(eh.e_shnum) * sizeof(Elf64_Shdr)) ||
      !InFile(size, eh.e_phoff, static_cast<uint64_t>(eh.e_phnum) * sizeof(Elf64_Phdr))) {
    munmap(map, size);
    return o;
  }
  o->map = map;
  o->map_size = size;
  std::vector<Elf64_Shdr> sh(eh.e_shnum);
  memcpy(sh.data(), file + eh.e_shoff, sh.size() * sizeof(Elf64_Shdr));
  // The linker writes every dynamic symbol to .symtab as well, and strip removes .symtab
  // whole: with a .symtab, .dynsym adds nothing. An object has at most one of each.
  const Elf64_Shdr* table = nullptr;
  for (const Elf64_Shdr& s : sh) {
    if (s.sh_type == SHT_SYMTAB) table = &s;
    if (s.sh_type == SHT_DYNSYM && !table) table = &s;
  }
  // The addresses functions can have: the object's code sections. Only a guide for the
  // buckets' size; a symbol outside goes to the first or the last bucket.
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (const Elf64_Shdr& s : sh) {
    if (s.sh_type == SHT_NOTE && o->build_id.empty() && InFile(size, s.sh_offset, s.sh_size)) {
      uint64_t at = s.sh_offset, end = s.sh_offset + s.sh_size;
      while (at + sizeof(Elf64_Nhdr) <= end) {
        Elf64_Nhdr nh;
        memcpy(&nh, file + at, sizeof nh);
        uint64_t name_at = at + sizeof nh, desc_at = name_at + ((nh.n_namesz + 3) & ~3u);
        uint64_t next = desc_at + ((nh.n_descsz + 3) & ~3u);
        if (next > end) break;
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && memcmp(file + name_at, "GNU", 4) == 0) {
          o->build_id = Hex(file + desc_at, nh.n_descsz);
          break;
        }
        at = next;
      }
    }
    if ((s.sh_flags & SHF_ALLOC) && (s.sh_flags & SHF_EXECINSTR) && s.sh_size > 0) {
      lo = std::min<uintptr_t>(lo, s.sh_addr);
      hi = std::max<uintptr_t>(hi, s.sh_addr + s.sh_size);
    }
  }
  if (!table || table->sh_link >= sh.size() || table->sh_entsize != sizeof(Elf64_Sym) ||
      !InFile(size, table->sh_offset, table->sh_size)) {
    return o;
  }
  const Elf64_Shdr& strs = sh[table->sh_link];
  if (!InFile(size, strs.sh_offset, strs.sh_size) || strs.sh_size == 0) return o;
  // A name must end inside its string table.
  if (file[strs.sh_offset + strs.sh_size - 1] != '\0') return o;
  uint64_t count = table->sh_size / sizeof(Elf64_Sym);
  if (count == 0 || count > UINT32_MAX) return o;
  o->symtab = table->sh_offset;
  o->strtab = strs.sh_offset;
  o->strtab_size = strs.sh_size;
  if (lo >= hi) {  // no code sections: the functions' own range
    for (uint64_t i = 0; i < count; i++) {
      uintptr_t value;
      if (!IsFunction(file + o->symtab + i * sizeof(Elf64_Sym), strs.sh_size, &value)) continue;
      lo = std::min(lo, value);
      hi = std::max(hi, value + 1);
    }
    if (lo >= hi) return o;
  }
  IndexSymbols(o, file, count, lo, hi, strs.sh_size);
  return o;
}


// Two passes over the table in the file, counting then placing each function in its
// address bucket: no copy of the table and no sort (the table is in link order, not
// address order: about one step in two goes down). Reading node 20's executable this way
// takes 1.6-2.4 ms of thread CPU and 5.6M instructions, against 6.1-6.8 ms and 12.0M for
// copying 16-byte entries, radix-sorting them and copying them again (docs/symbolization.md).
void NativeSymbols::IndexSymbols(Object* o, const unsigned char* file, uint64_t count, uintptr_t lo, uintptr_t hi,
                                 uint64_t strtab_size) {
  // About four symbols (three functions) per bucket, so a lookup reads a handful.
  uint64_t want = std::max<uint64_t>(1, count / 4);
  unsigned shift = 0;
  while (shift < 63 && ((hi - lo) >> shift) >= want) shift++;
  o->lo = lo;
  o->shift = shift;
  size_t buckets = static_cast<size_t>(((hi - lo) >> shift) + 1);
  std::vector<uint32_t>& start = o->bucket_start;
  start.assign(buckets + 1, 0);
  const unsigned char* syms = file + o->symtab;
  // BucketOf, with its fields in registers.
  const size_t last = buckets - 1;
  auto bucket = [lo, shift, last](uintptr_t v) {
    uintptr_t b = v < lo ? 0 : (v - lo) >> shift;
    return b > last ? last : static_cast<size_t>(b);
  };
  uint32_t n = 0;
  for (uint64_t i = 0; i < count; i++) {
    uintptr_t value;
    if (!IsFunction(syms + i * sizeof(Elf64_Sym), strtab_size, &value)) continue;
    start[bucket(value) + 1]++;
    n++;
  }
  if (n == 0) {
    start.clear();
    return;
  }
  for (size_t b = 1; b <= buckets; b++) start[b] += start[b - 1];
  // start[b] is bucket b's write cursor here; it ends at bucket b + 1's first entry.
  // (Reading the table twice costs less than noting each function's bucket in a second
  // array in the first pass: that array's fresh pages fault in one by one.)
  o->index.resize(n);
  uint32_t* index = o->index.data();
  uint32_t* cursor = start.data();
  for (uint64_t i = 0; i < count; i++) {
    uintptr_t value;
    if (!IsFunction(syms + i * sizeof(Elf64_Sym), strtab_size, &value)) continue;
    index[cursor[bucket(value)]++] = static_cast<uint32_t>(i);
  }
  memmove(start.data() + 1, start.data(), buckets * sizeof(uint32_t));
  start[0] = 0;
}

NativeSymbols::Sym NativeSymbols::SymAt(const Object* o, uint32_t i) {
  Elf64_Sym s;
  memcpy(&s, static_cast<const unsigned char*>(o->map) + o->symtab + static_cast<uint64_t>(i) * sizeof(Elf64_Sym), sizeof s);
  return {static_cast<uintptr_t>(s.st_value), s.st_size, s.st_name};
}

// Monotonic in the address, clamped at both ends: a lower bucket holds only lower addresses.
size_t NativeSymbols::BucketOf(const Object* o, uintptr_t link) {
  size_t last = o->bucket_start.size() - 2;
  if (link < o->lo) return 0;
  uintptr_t b = (link - o->lo) >> o->shift;
  return b > last ? last : static_cast<size_t>(b);
}

bool NativeSymbols::Lookup(const Object* o, uintptr_t link, Sym* out) {
  if (o->index.empty()) return false;
  const std::vector<uint32_t>& start = o->bucket_start;
  size_t b = BucketOf(o, link);
  // The last symbol at or below the address; of aliases (one address, several names) the
  // largest, the first in the table among equals.
  bool found = false;
  Sym best{};
  for (size_t k = b + 1; k-- > 0 && !found;) {
    for (uint32_t j = start[k]; j < start[k + 1]; j++) {
      Sym s = SymAt(o, o->index[j]);
      if (s.value > link) continue;
      if (!found || s.value > best.value || (s.value == best.value && s.size > best.size)) best = s;
      found = true;
    }
  }
  if (!found) return false;
  uintptr_t limit;
  if (best.size > 0) {
    limit = best.value + best.size;
  } else {
    // An unsized symbol (hand-written assembly) covers up to the next one, within reason,
    // and only itself when it is the table's last.
    uintptr_t cap = best.value + 4096;
    bool next_found = false;
    uintptr_t next = 0;
    size_t last = BucketOf(o, cap);
    for (size_t k = b; k <= last && !next_found; k++) {
      for (uint32_t j = start[k]; j < start[k + 1]; j++) {
        uintptr_t v = SymAt(o, o->index[j]).value;
        if (v > link && (!next_found || v < next)) {
          next = v;
          next_found = true;
        }
      }
    }
    if (next_found) limit = std::min(next, cap);
    else limit = start[last + 1] < o->index.size() ? cap : best.value + 1;
  }
  if (link >= limit) return false;
  *out = best;
  return true;
}

uint32_t NativeSymbols::MappingLocked(Object* obj, const Segment& seg) {
  for (size_t i = 0; i < mappings_.size(); i++) {
    if (mapping_objects_[i] == obj && mappings_[i].start == seg.start) return mappings_[i].id;
  }
  NativeMapping m;
  m.id = static_cast<uint32_t>(mappings_.size() + 1);
  m.path = obj->path;
  m.build_id = obj->build_id;
  m.start = seg.start;
  m.limit = seg.limit;
  m.offset = seg.offset;
  mappings_.push_back(m);
  mapping_objects_.push_back(obj);
  return m.id;
}

NativeResolution NativeSymbols::Resolve(uintptr_t addr) {
  NativeResolution r;
  FoundObject found = ObjectOf(addr);
  if (!found.found) return r;
  std::lock_guard<std::mutex> lock(mu_);
  if (exe_.empty()) exe_ = SelfExe();
  // The executable's entry has no name; its path is /proc/self/exe.
  std::string path = found.executable ? exe_ : found.path;
  if (path.empty()) return r;
  Object* obj = LoadLocked(path, found.bias);
  r.mapping = MappingLocked(obj, {found.seg_start, found.seg_limit, found.seg_offset});
  r.path = path;
  Sym s;
  if (Lookup(obj, addr - obj->bias, &s)) {
    const char* name = static_cast<const char*>(obj->map) + obj->strtab + s.name;
    if (*name) {
      r.name = DemangleSymbol(name);
      r.symbol = s.value + obj->bias;
    }
  }
  // dladdr's dynamic symbol, for objects whose file gave no table (the vDSO has no file).
  // Not otherwise: it sees only .dynsym, which is in .symtab or is the table read, and
  // it scans all of it per call (~0.3 ms for node's 67k dynamic symbols).
  Dl_info dl;
  if (r.name.empty() && obj->index.empty() && dladdr(reinterpret_cast<void*>(addr), &dl) && dl.dli_sname && dl.dli_saddr) {
    r.name = DemangleSymbol(dl.dli_sname);
    r.symbol = reinterpret_cast<uintptr_t>(dl.dli_saddr);
  }
  return r;
}

std::vector<NativeMapping> NativeSymbols::Mappings() {
  std::lock_guard<std::mutex> lock(mu_);
  return mappings_;
}

}  // namespace sigprof
