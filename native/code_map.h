// Address → function map built from V8's JIT code events (Isolate::SetJitCodeEventHandler).
//
// Writers: V8's code event callback, on the JS thread (code added) and on GC worker
// threads (code moved during evacuation), so everything is under one mutex. Readers: the
// sampler's collector thread and the JS thread. The signal handler never touches this
// map; it only reads `seq()`, the number of events applied so far, so that a sample
// can later be resolved against the map as it was when the sample was taken: while
// history is kept, entries that are moved, replaced or removed go to a graveyard with
// the event index that ended them.
//
// One class, a file per job: code_map.cc the map and its lookup, code_map_events.cc the
// code-event listener that fills it, code_map_resolve.cc addresses to frames (positions,
// inlining), code_map_functions.cc the function table the frames name.
#pragma once
#include "frame_windows.h"

#include <v8.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace sigprof {

struct NativeResolution;

enum class FunctionKind : uint8_t { kUnknown = 0, kJs = 1, kBuiltin = 2, kNative = 3, kRegExp = 4, kOther = 5 };

struct FunctionInfo {
  std::string name;
  std::string url;  // script name / URL; empty for builtins
  int script_id = -1;
  int line = 0;     // 1-based first line of the function, 0 if unknown
  int column = 0;
  FunctionKind kind = FunctionKind::kUnknown;
  // Native code: the symbol's runtime address (the sampled address when no symbol
  // covers it) and the NativeSymbols mapping it lies in (0: none).
  uint64_t address = 0;
  uint32_t mapping = 0;
};

// (code offset, script source position), sorted by offset.
using LineTable = std::vector<std::pair<uint32_t, uint32_t>>;

struct CodeEntry {
  uintptr_t start = 0;
  uint32_t size = 0;
  uint32_t fn = 0;
  uint8_t code_type = 0;  // v8::JitCodeEvent::CodeType
  char tier = 0;          // '~' interpreted, '^' Sparkplug, '+' Maglev, '*' TurboFan, 0 otherwise
  bool interpreter_machinery = false;  // bytecode handlers and trampolines: time there is the JS function's
  std::shared_ptr<const LineTable> lines;
  // JIT code: where its own frame is not built (frame_windows.h); null if none found.
  std::shared_ptr<const FrameWindows> frame_windows;
  uint64_t added = 0;     // index of the event that created this entry
  uint64_t removed = 0;   // graveyard only: index of the event that ended it
  // Optimized code only, computed at its first resolution: whether the functions inlined
  // into it form a known chain (see CodeMap::InlineChainKnown).
  mutable uint8_t inline_chain = 0;  // 0 not computed, 1 known, 2 not known
};

// One resolved frame: function id and source position (-1 if unknown: the function's
// first line is shown; values <= -2 are a line already known, -(line + 2)).
struct ResolvedFrame {
  uint32_t fn;
  int32_t pos;
};

class CodeMap {
 public:
  static constexpr uint32_t kUnknownFunction = 0;
  static constexpr int32_t kUnknownLine = -2;  // line 0: "no line", for code with no positions

  explicit CodeMap(v8::Isolate* isolate);
  ~CodeMap();

  // Registers with V8 (enumerating existing code) and keeps listening until destruction.
  void Listen();
  void StopListening();

  uint64_t seq() const { return seq_.load(std::memory_order_acquire); }
  const std::atomic<uint64_t>* seq_counter() const { return &seq_; }

  // While history is on, replaced code goes to the graveyard so older samples still resolve.
  void SetKeepHistory(bool keep);
  // Forgets graveyard entries that no sample older than `min_seq` can need.
  void PruneHistory(uint64_t min_seq);

  // Lock held by the caller around a batch of resolutions.
  std::unique_lock<std::mutex> Lock() { return std::unique_lock<std::mutex>(mu_); }
  // Requires Lock(). `return_address` frames are resolved at (addr - 1), the call instruction.
  const CodeEntry* FindLocked(uintptr_t addr, uint64_t seq) const;
  // Requires Lock(). Appends the logical frames for `addr` (inlined frames recovered where
  // unambiguous), innermost first.
  void ResolveLocked(uintptr_t addr, uint64_t seq, bool return_address, std::vector<ResolvedFrame>* out);
  // Whether `addr` (in `e`) lies in the code's first source-position range: its prologue,
  // where the frame may not be built yet, and the few instructions after it.
  static bool InEntryRange(const CodeEntry& e, uintptr_t addr);
  // At `addr` in JIT code `e`: is the code's own frame built? kNotBuilt means FP is
  // certainly the caller's and the word at SP the return address into it: read from the
  // machine code where FindFrameWindows can (x86_64). Elsewhere kMaybe in the code's
  // first source-position range, where the prologue is but the frame may be built.
  enum class Frame : uint8_t { kBuilt, kNotBuilt, kMaybe };
  static Frame FrameAt(const CodeEntry& e, uintptr_t addr);
  // Requires Lock(). The root frame of a stack deeper than the capture limit.
  uint32_t TruncatedFunction() { return PseudoFunction("(truncated)", &truncated_fn_); }
  // Requires Lock(). A caller frame V8's stack walk lost and sigprof cannot name.
  uint32_t MissingFrameFunction() { return PseudoFunction("(missing frame)", &missing_frame_fn_); }
  // Requires Lock(). Function id for the native function starting at `addr` (an API
  // callback), named from its object's ELF symbol tables (or from `resolved`, the
  // resolution of `addr` when the caller already has it).
  uint32_t NativeFunctionLocked(uintptr_t addr, const NativeResolution* resolved = nullptr);
  // Requires Lock(). Function id for an address outside JS code, by its C++ symbol if any.
  uint32_t SymbolFunctionLocked(uintptr_t addr);

  // JS thread. Function id for a JS function seen through v8::StackTrace, cached by
  // script, interned name and start. The trace reports no function start, so it is found
  // from the frame's position (1-based `line`, `column`): see EnclosingStart.
  uint32_t StackTraceFunction(v8::Isolate* isolate, v8::Local<v8::StackFrame> frame, v8::Local<v8::String> name,
                              int line, int column);

  // Metadata of exactly these function ids (an unknown id gets the unknown function):
  // a profile asks for the functions its samples name, not for every one ever compiled.
  std::vector<FunctionInfo> FunctionsById(const uint32_t* ids, size_t n);
  // Every JS function of one script the map has seen, also after the script is collected
  // (the heap profile names a collected script's frames from these; docs/heap.md).
  std::vector<FunctionInfo> FunctionsOfScript(int script_id);

  // JS thread only: 1-based lines and columns for source positions of a script (0 where unknown).
  void PositionsToLines(int script_id, const int32_t* pos, int32_t* lines, int32_t* columns, size_t n);

  // Node 20 runs some builtins from a copy of the embedded blob while reporting .text
  // addresses; decided from /proc/self/maps and the code map at profile start.
  void DetectRemappedBuiltins();
  uintptr_t TranslateRemapped(uintptr_t addr) const;

  struct Counts { size_t entries, graveyard, functions, scripts, positions; uint64_t events, handler_ns; };
  Counts GetCounts();

  static void OnJitCodeEvent(const v8::JitCodeEvent* event);

  // The ids among `ids` of JS functions whose code was already compiled when the listener
  // was installed (enumerated without line tables): their frames in that code have no
  // position. The JS side decides which of them to report (SIGPROF_LATE_LOAD).
  std::vector<uint32_t> LineLessAmong(const uint32_t* ids, size_t n);

 private:
  void HandleEvent(const v8::JitCodeEvent* event);
  void AddCode(const v8::JitCodeEvent* event);
  void Bury(std::map<uintptr_t, CodeEntry>::iterator it, uint64_t idx);
  uint32_t Intern(FunctionInfo&& info);
  const CodeEntry* FindLiveLocked(uintptr_t addr) const;
  bool InlineChainKnown(const CodeEntry& e);
  uint32_t InlinedFramesFunction();
  uint32_t PseudoFunction(const char* name, uint32_t* cache);
  bool EnclosingStart(v8::Isolate* isolate, int script_id, v8::Local<v8::StackFrame> frame, int line, int column,
                      int* start_line, int* start_column);
  const std::vector<uint32_t>* LineStarts(v8::Isolate* isolate, int script_id, v8::Local<v8::StackFrame> frame);

  v8::Isolate* const isolate_;
  bool listening_ = false;
  bool enumerating_ = false;
  std::unordered_set<uint32_t> line_less_;  // see LineLessAmong
  std::mutex mu_;
  std::atomic<uint64_t> seq_{0};
  std::atomic<uint64_t> handler_ns_{0};
  bool keep_history_ = false;
  std::map<uintptr_t, CodeEntry> live_;
  // Addresses already found in live_, so that the frames every sample repeats cost a
  // probe, not a walk of a tree of thousands of entries. An entry stays valid until it
  // leaves live_ (buried: moved, replaced, removed), which bumps live_gen_ and with it
  // every slot; new code cannot cover a cached address without burying the entry there.
  struct LookupSlot {
    uintptr_t addr = 0;
    uint64_t gen = 0;
    const CodeEntry* entry = nullptr;
  };
  static constexpr size_t kLookupSlots = 2048;
  mutable std::unique_ptr<LookupSlot[]> lookup_{new LookupSlot[kLookupSlots]};
  uint64_t live_gen_ = 1;
  std::multimap<uintptr_t, CodeEntry> graveyard_;
  uint32_t max_code_size_ = 0;
  std::vector<FunctionInfo> functions_;  // index 0: unknown
  std::unordered_map<std::string, uint32_t> function_ids_;
  std::unordered_map<uintptr_t, uint32_t> native_ids_;
  std::unordered_map<uintptr_t, uint32_t> symbol_ids_;
  uint32_t inlined_frames_fn_ = kUnknownFunction;
  uint32_t truncated_fn_ = kUnknownFunction;
  uint32_t missing_frame_fn_ = kUnknownFunction;
  struct NamedFunction {
    v8::Global<v8::String> name;
    int start_line, start_column;
    uint32_t fn;
  };
  std::unordered_map<uint64_t, std::vector<NamedFunction>> stack_trace_functions_;
  // JS thread: (script, line, column) of a stack-trace frame → its function's start
  // (0, 0: unknown), so that only a position seen for the first time pays the search.
  struct StartKey {
    int script_id, line, column;
    bool operator==(const StartKey& o) const { return script_id == o.script_id && line == o.line && column == o.column; }
  };
  struct StartKeyHash {
    size_t operator()(const StartKey& k) const {
      return std::hash<uint64_t>()((static_cast<uint64_t>(static_cast<uint32_t>(k.script_id)) << 32) ^
                                   (static_cast<uint64_t>(static_cast<uint32_t>(k.line)) << 12) ^ static_cast<uint32_t>(k.column));
    }
  };
  std::unordered_map<StartKey, std::pair<int, int>, StartKeyHash> enclosing_starts_;
  // JS thread: per script, the offsets its lines start at (empty: source unavailable).
  static constexpr size_t kMaxLineStarts = 1 << 20;
  std::unordered_map<int, std::vector<uint32_t>> line_starts_;
  size_t line_starts_total_ = 0;
  // Line tables arrive (END_LINE_INFO_RECORDING) just before their CODE_ADDED.
  std::unordered_map<uintptr_t, std::shared_ptr<const LineTable>> pending_lines_;
  // Per script: which function's bytecode has each source position (kAmbiguous if
  // several). Appending is all a code event pays; sorting happens when a frame needs it.
  static constexpr uint32_t kAmbiguous = 0xffffffffu;
  struct PositionIndex {
    std::vector<std::pair<uint32_t, uint32_t>> sorted;   // (position, function), unique positions
    std::vector<std::pair<uint32_t, uint32_t>> pending;  // not merged yet
    uint32_t Owner(uint32_t pos);
  };
  std::unordered_map<int, PositionIndex> positions_;
  size_t position_count_ = 0;
  struct Script {
    std::string url;
    v8::Global<v8::UnboundScript> handle;  // weak: never keeps a script alive
  };
  std::unordered_map<int, Script> scripts_;
  // Copies of the embedded builtins to translate (a Worker's isolate may have its own).
  struct Remap { uintptr_t start, end, delta; };
  std::vector<Remap> remaps_;
};

}  // namespace sigprof
