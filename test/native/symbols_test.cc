// Unit test of NativeSymbols::Resolve (native/native_symbols.cc): every loaded object of
// this process with a file is read here a second way, naively (every function symbol
// of its table, no index), and Resolve must name the same symbol for addresses at and
// around each symbol's start and end and at random places in its executable segments;
// each Mapping must agree with /proc/self/maps. Built and run by
// test/native-symbols.test.js; exits non-zero with a message on failure.
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "../../native/native_symbols.h"

using sigprof::NativeSymbols;

#define EXPECT(cond, ...)                                                   \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "%s:%d: expected %s: ", __FILE__, __LINE__, #cond);  \
      fprintf(stderr, __VA_ARGS__);                                         \
      fprintf(stderr, "\n");                                                \
      exit(1);                                                              \
    }                                                                       \
  } while (0)

namespace {

struct Func {
  uint64_t value, size;
  const char* name;
};

struct Loaded {
  std::string path;
  uintptr_t bias = 0;
  std::vector<std::pair<uintptr_t, uintptr_t>> exec;  // runtime [lo, hi) of R-X segments
};

// The functions of the object's .symtab (its .dynsym without one), in table order.
std::vector<Func> ReadFunctions(const std::string& path) {
  std::vector<Func> out;
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return out;
  struct stat st;
  fstat(fd, &st);
  auto* f = static_cast<const unsigned char*>(mmap(nullptr, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0));
  close(fd);
  EXPECT(f != MAP_FAILED, "mmap %s", path.c_str());
  Elf64_Ehdr eh;
  memcpy(&eh, f, sizeof eh);
  const Elf64_Shdr* table = nullptr;
  for (int i = 0; i < eh.e_shnum; i++) {
    const auto* s = reinterpret_cast<const Elf64_Shdr*>(f + eh.e_shoff) + i;
    if (s->sh_type == SHT_SYMTAB) table = s;
    if (s->sh_type == SHT_DYNSYM && !table) table = s;
  }
  if (!table) return out;
  const auto* strs = reinterpret_cast<const Elf64_Shdr*>(f + eh.e_shoff) + table->sh_link;
  for (uint64_t i = 0; i < table->sh_size / sizeof(Elf64_Sym); i++) {
    Elf64_Sym s;
    memcpy(&s, f + table->sh_offset + i * sizeof s, sizeof s);
    int type = ELF64_ST_TYPE(s.st_info);
    if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s.st_shndx == SHN_UNDEF || s.st_value == 0) continue;
    out.push_back({s.st_value, s.st_size, reinterpret_cast<const char*>(f + strs->sh_offset + s.st_name)});
  }
  return out;
}

// The symbol that covers `link`, naively: the highest start at or below it; of those at
// one address the largest, the first in the table among equals; an unsized one covers
// up to the next start (at most 4 KiB), and only itself if none follows.
const Func* Covering(const std::vector<Func>& fs, uint64_t link) {
  const Func* best = nullptr;
  bool above = false;
  uint64_t next = 0;
  for (const Func& f : fs) {
    if (f.value > link) {
      if (!above || f.value < next) next = f.value;
      above = true;
    } else if (!best || f.value > best->value || (f.value == best->value && f.size > best->size)) {
      best = &f;
    }
  }
  if (!best) return nullptr;
  uint64_t limit = best->size > 0 ? best->value + best->size
                                  : std::min<uint64_t>(above ? next : best->value + 1, best->value + 4096);
  return link < limit && *best->name ? best : nullptr;
}

}  // namespace

int main() {
  // More objects with big tables than this binary alone: libm and libstdc++ are stripped
  // to .dynsym on Debian, this binary has a .symtab.
  dlopen("libm.so.6", RTLD_NOW);
  std::vector<Loaded> objects;
  dl_iterate_phdr([](struct dl_phdr_info* info, size_t, void* data) {
    auto* v = static_cast<std::vector<Loaded>*>(data);
    Loaded o;
    o.path = v->empty() ? "/proc/self/exe" : (info->dlpi_name ? info->dlpi_name : "");
    o.bias = info->dlpi_addr;
    for (int i = 0; i < info->dlpi_phnum; i++) {
      const ElfW(Phdr)& ph = info->dlpi_phdr[i];
      if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X)) o.exec.push_back({o.bias + ph.p_vaddr, o.bias + ph.p_vaddr + ph.p_memsz});
    }
    v->push_back(o);
    return 0;
  }, &objects);
  std::mt19937_64 rng(7);
  size_t checked = 0, named = 0, files = 0;
  for (const Loaded& o : objects) {
    if (o.path.empty() || o.path.find("linux-vdso") != std::string::npos) continue;
    std::vector<Func> fs = ReadFunctions(o.path);
    if (fs.empty()) continue;
    files++;
    auto inside = [&](uintptr_t a) {
      for (auto& [lo, hi] : o.exec) {
        if (a >= lo && a < hi) return true;
      }
      return false;
    };
    std::vector<uint64_t> links;
    for (size_t i = 0; i < fs.size(); i += 1 + fs.size() / 3000) {
      const Func& f = fs[i];
      for (uint64_t a : {f.value - 1, f.value, f.value + f.size / 2, f.value + f.size - 1, f.value + f.size, f.value + 4095})
        links.push_back(a);
    }
    for (auto& [lo, hi] : o.exec) {
      for (int k = 0; k < 500; k++) links.push_back(lo - o.bias + rng() % (hi - lo));
    }
    for (uint64_t link : links) {
      uintptr_t addr = link + o.bias;
      if (!inside(addr)) continue;
      const Func* want = Covering(fs, link);
      sigprof::NativeResolution r = NativeSymbols::Get().Resolve(addr);
      std::string want_name = want ? sigprof::DemangleSymbol(want->name) : std::string();
      EXPECT(r.name == want_name, "%s +0x%lx: got '%s', want '%s'", o.path.c_str(), (unsigned long)link, r.name.c_str(), want_name.c_str());
      if (want) EXPECT(r.symbol == want->value + o.bias, "%s +0x%lx: symbol start", o.path.c_str(), (unsigned long)link);
      EXPECT(r.mapping != 0, "%s +0x%lx: a mapping", o.path.c_str(), (unsigned long)link);
      checked++;
      named += want != nullptr;
    }
  }
  EXPECT(files >= 3, "objects read: %zu", files);
  EXPECT(named > checked / 4, "named %zu of %zu", named, checked);
  // Each Mapping is a segment the kernel mapped from that file at that offset.
  std::vector<std::string> maps;
  {
    std::ifstream in("/proc/self/maps");
    for (std::string line; std::getline(in, line);) maps.push_back(line);
  }
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  EXPECT(n > 0, "readlink");
  exe[n] = 0;
  std::vector<sigprof::NativeMapping> ms = NativeSymbols::Get().Mappings();
  EXPECT(ms.size() >= files, "mappings %zu", ms.size());
  for (const sigprof::NativeMapping& m : ms) {
    bool agrees = false;
    std::string want_path = m.path == "/proc/self/exe" ? exe : m.path;
    char real[4096];
    if (realpath(want_path.c_str(), real)) want_path = real;
    for (const std::string& line : maps) {
      unsigned long lo, hi, off;
      char perms[8];
      int at = 0;
      if (sscanf(line.c_str(), "%lx-%lx %7s %lx %*s %*s %n", &lo, &hi, perms, &off, &at) < 4 || at <= 0) continue;
      std::string p = line.substr(static_cast<size_t>(at));
      if (realpath(p.c_str(), real)) p = real;
      if (p == want_path && perms[2] == 'x' && m.start >= lo && m.start < hi && off + (m.start - lo) == m.offset && m.limit <= hi) agrees = true;
    }
    EXPECT(agrees, "mapping %s %lx-%lx @%lx is in /proc/self/maps", m.path.c_str(), (unsigned long)m.start, (unsigned long)m.limit, (unsigned long)m.offset);
  }
  printf("ok %zu addresses in %zu objects, %zu named, %zu mappings\n", checked, files, named, ms.size());
  return 0;
}
