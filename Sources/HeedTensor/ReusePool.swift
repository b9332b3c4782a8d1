import Foundation

/// Objects that hot paths reuse from call to call instead of allocating
/// afresh — tensor storage and scratch blocks, workspaces — kept while they
/// are idle and their sizes add up to at most `retainedBytes`.
///
/// Why: a fresh buffer of a few MiB costs a page fault per 4 KiB page on its
/// first write (measured: ≈ 0.5 ms per MiB here, several percent of a flash
/// attention backward at L = 1024), and glibc's heap does not reliably hand
/// freed blocks of that size back to the next request.
package final class ReusePool<Item: AnyObject>: @unchecked Sendable {
    // @unchecked: `idle` is read and written only under `lock`; an item taken
    // out belongs to its taker until given back.
    private let lock = NSLock()
    private var idle: [(item: Item, bytes: Int)] = []
    /// Idle items beyond this many bytes are freed, oldest first.
    package let retainedBytes: Int

    package init(retainedBytes: Int) { self.retainedBytes = retainedBytes }

    /// The most recently given idle item that `fits`, or `make()` when none does.
    package func take(where fits: (Item) -> Bool, orMake make: () -> Item) -> Item {
        lock.lock()
        if let index = idle.lastIndex(where: { fits($0.item) }) {
            defer { lock.unlock() }
            return idle.remove(at: index).item
        }
        lock.unlock()
        return make()
    }

    /// Frees every idle item (for measurements that must start from nothing kept).
    package func removeAll() {
        lock.lock()
        defer { lock.unlock() }
        idle.removeAll()
    }

    /// Hands `item`, which holds `bytes`, back for a later `take`.
    package func give(_ item: Item, bytes: Int) {
        lock.lock()
        defer { lock.unlock() }
        idle.append((item, bytes))
        while idle.reduce(0, { $0 + $1.bytes }) > retainedBytes { idle.removeFirst() }
    }
}
