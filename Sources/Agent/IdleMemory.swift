import CAgentSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What an idle agent gives back between deployments. A deployment touches code the agent will not run again until
/// the next one — extraction, installs, hooks, YAML — and those pages of the binary stay mapped, so an idle agent
/// would count tens of MiB it does not use. After a deployment it:
/// - returns freed heap to the system (`malloc_trim`);
/// - unmaps the pages of the binary and its libraries that are read-only and were never written (`MADV_DONTNEED` on
///   file mappings whose smaps show no anonymous page): they are clean copies of the files, still in the page
///   cache, and come back on first use with a minor fault. Mappings holding relocated or written data are never
///   touched.
/// - does the same for the pages of the binary's `.rodata` (constant data, never written; the linker places it in
///   a writable segment beside `.data`, whose written pages keep it out of the rule above), page by page and only
///   inside the section's bounds.
enum IdleMemory {
    /// Gives back what it can; answers how many bytes of mappings it released (0 where /proc is unavailable).
    @discardableResult
    static func release() -> Int {
        _ = deployctl_malloc_trim()
        guard let smaps = try? String(contentsOfFile: "/proc/self/smaps", encoding: .utf8) else { return 0 }
        var released = 0
        var current: (start: UInt, end: UInt, eligible: Bool)?
        func finish() {
            guard let mapping = current, mapping.eligible, mapping.end > mapping.start else { return }
            if madvise(UnsafeMutableRawPointer(bitPattern: mapping.start), Int(mapping.end - mapping.start), MADV_DONTNEED) == 0 {
                released += Int(mapping.end - mapping.start)
            }
        }
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            let range = first.split(separator: "-")
            if range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16) {
                // A mapping's header: "start-end perms offset dev inode [path]".
                finish()
                let permissions = fields.count > 1 ? fields[1] : ""
                let path = fields.count > 5 ? fields[5...].joined(separator: " ") : ""
                current = (start, end, path.hasPrefix("/") && !permissions.contains("w") && permissions.hasSuffix("p"))
            } else if first == "Anonymous:", current != nil {
                // Any private (written) page makes the mapping untouchable: DONTNEED would drop the write.
                if (fields.count > 1 ? Int(fields[1]) : nil) != 0 { current?.eligible = false }
            }
        }
        finish()
        released += releaseConstantData()
        return released
    }

    /// `.rodata` of this binary, whole pages only.
    static func releaseConstantData() -> Int {
        guard let section = ExecutableSections.rodata, let base = ExecutableSections.loadBase() else { return 0 }
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        let start = (base + section.lowerBound + page - 1) / page * page
        let end = (base + section.upperBound) / page * page
        guard end > start, let pagemap = FileHandle(forReadingAtPath: "/proc/self/pagemap") else { return 0 }
        defer { try? pagemap.close() }
        // One 64-bit entry per page: bit 63 present, bit 61 a file page. A present page that is not a file page has
        // been written (copied on write): it is left alone, so nothing written is ever dropped.
        let pages = Int((end - start) / page)
        guard (try? pagemap.seek(toOffset: UInt64(start / page) * 8)) != nil, let entries = try? pagemap.read(upToCount: pages * 8),
            entries.count == pages * 8
        else { return 0 }
        var released = 0
        var run: UInt? = nil
        func flush(_ upTo: UInt) {
            guard let from = run, upTo > from else { return }
            if madvise(UnsafeMutableRawPointer(bitPattern: from), Int(upTo - from), MADV_DONTNEED) == 0 { released += Int(upTo - from) }
            run = nil
        }
        entries.withUnsafeBytes { raw in
            for index in 0..<pages {
                let entry = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))
                let address = start + UInt(index) * page
                let written = entry & (1 << 63) != 0 && entry & (1 << 61) == 0
                if written {
                    flush(address)
                } else if run == nil {
                    run = address
                }
            }
        }
        flush(end)
        return released
    }
}

/// Where a section of the running executable is (its ELF section headers), relative to its load address.
enum ExecutableSections {
    /// Read once: the header, the section table and the section names (a few KiB, not the 200 MB binary).
    static let rodata: Range<UInt>? = range(of: ".rodata")

    static func range(of name: String) -> Range<UInt>? {
        guard let file = FileHandle(forReadingAtPath: "/proc/self/exe") else { return nil }
        defer { try? file.close() }
        func read(_ offset: UInt64, _ count: Int) -> Data? {
            guard count > 0, count <= 16 << 20, (try? file.seek(toOffset: offset)) != nil, let data = try? file.read(upToCount: count),
                data.count == count
            else { return nil }
            return data
        }
        func integer<T: FixedWidthInteger>(_ data: Data, _ offset: Int, _: T.Type) -> T? {
            guard offset >= 0, offset + MemoryLayout<T>.size <= data.count else { return nil }
            return data.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
        }
        // ELF64, little-endian only (x86_64, aarch64).
        guard let head = read(0, 64), head[0] == 0x7F, head[1] == 0x45, head[4] == 2, head[5] == 1,
            let tableOffset = integer(head, 0x28, UInt64.self), let entrySize = integer(head, 0x3A, UInt16.self),
            let count = integer(head, 0x3C, UInt16.self), let namesIndex = integer(head, 0x3E, UInt16.self), entrySize >= 0x40,
            let table = read(tableOffset, Int(count) * Int(entrySize))
        else { return nil }
        func field<T: FixedWidthInteger>(_ index: Int, _ offset: Int, _ type: T.Type) -> T? {
            integer(table, index * Int(entrySize) + offset, type)
        }
        guard let namesOffset = field(Int(namesIndex), 0x18, UInt64.self), let namesSize = field(Int(namesIndex), 0x20, UInt64.self),
            let names = read(namesOffset, Int(namesSize))
        else { return nil }
        for index in 0..<Int(count) {
            guard let nameOffset = field(index, 0, UInt32.self), Int(nameOffset) < names.count,
                let end = names[Int(nameOffset)...].firstIndex(of: 0),
                String(decoding: names[Int(nameOffset)..<end], as: UTF8.self) == name,
                let address = field(index, 0x10, UInt64.self), let size = field(index, 0x20, UInt64.self)
            else { continue }
            return UInt(address)..<UInt(address + size)
        }
        return nil
    }

    /// The address the executable's first byte is mapped at (a position-independent executable moves).
    static func loadBase() -> UInt? {
        guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"),
            let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8)
        else { return nil }
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 5, fields[5...].joined(separator: " ") == executable, UInt(fields[2], radix: 16) == 0,
                let start = fields[0].split(separator: "-").first.flatMap({ UInt($0, radix: 16) })
            else { continue }
            return start
        }
        return nil
    }
}
