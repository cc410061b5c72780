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
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

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
// (the executable's entry comes first and has no name) and its load bias.
struct FoundObject {
  uintptr_t addr;
  int index = 0;
  bool found = false;
  bool executable = false;
  std::string path;
  uintptr_t bias = 0;
};

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
  // Any function of the executable finds it; dl_iterate_phdr lists it first.
  struct First { bool done = false; uintptr_t bias = 0; };
  First first;
  dl_iterate_phdr([](struct dl_phdr_info* info, size_t, void* data) {
    auto* f = static_cast<First*>(data);
    f->bias = info->dlpi_addr;
    f->done = true;
    return 1;
  }, &first);
  if (!first.done) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (exe_.empty()) exe_ = SelfExe();
  if (exe_.empty()) return;
  Object* obj = LoadLocked(exe_, first.bias);
  // pprof takes the first Mapping for the main binary (`File:` in go tool pprof): the
  // executable's text gets its mapping before any library's.
  if (!obj->symbols.empty()) MappingLocked(obj, obj->symbols[obj->symbols.size() / 2].value + obj->bias);
}

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
  // whole: with a .symtab, .dynsym adds nothing but the work of sorting node's 67k
  // exported functions a second time.
  bool has_symtab = false;
  for (const Elf64_Shdr& s : sh) has_symtab |= s.sh_type == SHT_SYMTAB;
  unsigned table_type = has_symtab ? SHT_SYMTAB : SHT_DYNSYM;
  // Grown once: doubling a 2 MB vector pays its copies and page faults twice over.
  size_t capacity = 0;
  for (const Elf64_Shdr& s : sh) {
    if (s.sh_type == table_type) capacity += s.sh_size / sizeof(Elf64_Sym);
  }
  if (capacity <= size / sizeof(Elf64_Sym)) o->symbols.reserve(capacity);
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
    if (s.sh_type != table_type) continue;
    if (s.sh_link >= sh.size() || s.sh_entsize != sizeof(Elf64_Sym) || !InFile(size, s.sh_offset, s.sh_size)) continue;
    const Elf64_Shdr& strs = sh[s.sh_link];
    if (!InFile(size, strs.sh_offset, strs.sh_size) || strs.sh_size == 0) continue;
    // A name must end inside its string table.
    if (file[strs.sh_offset + strs.sh_size - 1] != '\0') continue;
    size_t count = s.sh_size / sizeof(Elf64_Sym);
    for (size_t i = 0; i < count; i++) {
      Elf64_Sym sym;
      memcpy(&sym, file + s.sh_offset + i * sizeof(Elf64_Sym), sizeof sym);
      int type = ELF64_ST_TYPE(sym.st_info);
      if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
      // The name is not read now: touching every name would page in all of .strtab
      // (7-18 MB for node) for the few hundred functions a profile names.
      if (sym.st_name >= strs.sh_size || strs.sh_offset + sym.st_name > UINT32_MAX) continue;
      uint32_t size32 = sym.st_size > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(sym.st_size);
      o->symbols.push_back({static_cast<uintptr_t>(sym.st_value), size32, static_cast<uint32_t>(strs.sh_offset + sym.st_name)});
    }
  }
  SortByValue(&o->symbols);
  // One entry per address: the largest of its aliases (a sized one over an unsized one).
  size_t kept = 0;
  for (size_t i = 0; i < o->symbols.size(); i++) {
    if (kept > 0 && o->symbols[kept - 1].value == o->symbols[i].value) {
      if (o->symbols[i].size > o->symbols[kept - 1].size) o->symbols[kept - 1] = o->symbols[i];
    } else {
      o->symbols[kept++] = o->symbols[i];
    }
  }
  o->symbols.resize(kept);
  o->symbols.shrink_to_fit();
  return o;
}

// A radix sort on the bits in which the addresses differ: for node's ~150k functions,
// std::sort was most of what the first profile of a process cost its collector thread
// (about 10 ms); three linear passes are a tenth of that. Stable, so equal addresses keep
// the tables' order.
void NativeSymbols::SortByValue(std::vector<Symbol>* symbols) {
  std::vector<Symbol>& v = *symbols;
  if (v.size() < 2) return;
  uintptr_t lo = v[0].value, hi = v[0].value;
  for (const Symbol& s : v) {
    lo = std::min(lo, s.value);
    hi = std::max(hi, s.value);
  }
  // Digits of at most 16 bits, as few passes as the range needs: two for node's 27 bits.
  unsigned bits = hi > lo ? 64 - static_cast<unsigned>(__builtin_clzll(static_cast<unsigned long long>(hi - lo))) : 0;
  if (bits == 0) return;
  unsigned passes = (bits + 15) / 16;
  unsigned digit = (bits + passes - 1) / passes;
  size_t buckets = size_t{1} << digit;
  std::vector<Symbol> tmp(v.size());
  std::vector<uint32_t> start(buckets + 1);
  for (unsigned shift = 0; shift < bits; shift += digit) {
    std::fill(start.begin(), start.end(), 0);
    for (const Symbol& s : v) start[((s.value - lo) >> shift & (buckets - 1)) + 1]++;
    for (size_t b = 1; b <= buckets; b++) start[b] += start[b - 1];
    for (const Symbol& s : v) tmp[start[(s.value - lo) >> shift & (buckets - 1)]++] = s;
    v.swap(tmp);
  }
}

uint32_t NativeSymbols::MappingLocked(Object* obj, uintptr_t addr) {
  for (size_t i = 0; i < mappings_.size(); i++) {
    if (mapping_objects_[i] == obj && addr >= mappings_[i].start && addr < mappings_[i].limit) return mappings_[i].id;
  }
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long start, end, offset;
    char perms[8];
    int path_at = 0;
    if (sscanf(line.c_str(), "%lx-%lx %7s %lx %*s %*s %n", &start, &end, perms, &offset, &path_at) < 4) continue;
    if (addr < start || addr >= end) continue;
    NativeMapping m;
    m.id = static_cast<uint32_t>(mappings_.size() + 1);
    m.path = obj->path;
    m.build_id = obj->build_id;
    m.start = start;
    m.limit = end;
    m.offset = offset;
    mappings_.push_back(m);
    mapping_objects_.push_back(obj);
    return m.id;
  }
  return 0;
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
  r.mapping = MappingLocked(obj, addr);
  r.path = path;
  uintptr_t link = addr - obj->bias;
  auto it = std::upper_bound(obj->symbols.begin(), obj->symbols.end(), link,
                             [](uintptr_t a, const Symbol& s) { return a < s.value; });
  if (it != obj->symbols.begin()) {
    const Symbol& s = *std::prev(it);
    // An unsized symbol (hand-written assembly) covers up to the next one, within reason.
    uintptr_t limit = s.size > 0 ? s.value + s.size
                                 : std::min<uintptr_t>(it != obj->symbols.end() ? it->value : s.value + 1, s.value + 4096);
    const char* name = static_cast<const char*>(obj->map) + s.name;
    if (link < limit && *name) {
      r.name = DemangleSymbol(name);
      r.symbol = s.value + obj->bias;
    }
  }
  // dladdr's dynamic symbol, for objects whose file could not be read (the vDSO).
  Dl_info dl;
  if (r.name.empty() && dladdr(reinterpret_cast<void*>(addr), &dl) && dl.dli_sname && dl.dli_saddr) {
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
