"""Sums heaptrack's folded stacks (leaked bytes) by the innermost frame that is not the allocator,
the Swift runtime or a standard collection, so each line names the code that holds the memory."""
import collections
import re
import sys

RUNTIME = re.compile(
    r"^(swift_|_swift_|swift::|malloc|calloc|realloc|operator new|\[unknown\]|partial apply|thunk|outlined)"
    r"|ManagedBuffer|_ContiguousArrayStorage|_DictionaryStorage|_SetStorage|_NativeDictionary|_NativeSet"
    r"|Array|String|Dictionary|Set<|AsyncStream|CircularBuffer|ByteBuffer|_allocateUninitialized|__allocating_init"
    r"|\(anonymous namespace\)|Mutex|withLock")

totals = collections.Counter()
for line in sys.stdin:
    stack, _, count = line.rstrip().rpartition(" ")
    if not count.isdigit():
        continue
    frames = [frame.split(" (")[0] for frame in stack.split(";") if frame]
    holder = next((frame for frame in reversed(frames) if not RUNTIME.search(frame)), "?")
    totals[holder[:150]] += int(count)
print(f"live heap: {sum(totals.values()) / 1e6:.1f} MB; by holder:")
for holder, count in totals.most_common(40):
    print(f"{count / 1e3:9.0f} KB  {holder}")
