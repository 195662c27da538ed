import CArchive
import Foundation

/// What a bundle creation wrote.
public struct CreationSummary: Sendable, Equatable {
    public var entries: Int
    public var bytes: Int64
}

extension BundleArchive {
    /// Writes the contents of `directory` (paths relative to it, sorted, symlinks kept as symlinks) as a bundle.
    /// With `ignoreHidden`, files and directories whose name starts with `.` are left out, as `aws deploy push` does.
    @discardableResult
    public static func create(from directory: String, to path: String, type: ArchiveFormat = .zip, ignoreHidden: Bool = false) throws(BundleError)
        -> CreationSummary
    {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .io("\(directory) is not a directory")
        }
        guard let writer = archive_write_new() else {
            throw .io(deployctl_archive_load().map { String(cString: $0) } ?? "libarchive could not allocate a writer")
        }
        defer { archive_write_free(writer) }
        switch type {
        case .zip: archive_write_set_format_zip(writer)
        case .tar: archive_write_set_format_pax_restricted(writer)
        case .tgz:
            archive_write_set_format_pax_restricted(writer)
            archive_write_add_filter_gzip(writer)
        }
        guard archive_write_open_filename(writer, path) == ARCHIVE_OK else {
            throw .io("cannot write \(path): \(ArchiveReader.message(writer))")
        }
        guard let entry = archive_entry_new() else { throw .io("libarchive could not allocate an entry") }
        defer { archive_entry_free(entry) }

        let outputPath = URL(fileURLWithPath: path).standardizedFileURL.path
        var relativePaths = (fm.enumerator(atPath: directory)?.allObjects as? [String] ?? []).sorted()
        if ignoreHidden {
            relativePaths = relativePaths.filter { !$0.split(separator: "/").contains { $0.hasPrefix(".") } }
        }
        var summary = CreationSummary(entries: 0, bytes: 0)
        var buffer = DescriptorCopy.buffer()
        for relative in relativePaths {
            let full = directory + "/" + relative
            if URL(fileURLWithPath: full).standardizedFileURL.path == outputPath { continue }
            var info = stat()
            guard lstat(full, &info) == 0 else { throw .io("cannot read \(full): \(String(cString: strerror(errno)))") }
            archive_entry_clear(entry)
            archive_entry_set_pathname(entry, relative)
            archive_entry_set_perm(entry, info.st_mode & 0o7777)
            archive_entry_set_mtime(entry, info.st_mtim.tv_sec, info.st_mtim.tv_nsec)
            let format = UInt32(info.st_mode) & deployctl_AE_IFMT
            switch format {
            case deployctl_AE_IFDIR:
                archive_entry_set_filetype(entry, deployctl_AE_IFDIR)
            case deployctl_AE_IFLNK:
                archive_entry_set_filetype(entry, deployctl_AE_IFLNK)
                let target = (try? fm.destinationOfSymbolicLink(atPath: full)) ?? ""
                archive_entry_set_symlink(entry, target)
            case deployctl_AE_IFREG:
                archive_entry_set_filetype(entry, deployctl_AE_IFREG)
                archive_entry_set_size(entry, Int64(info.st_size))
            default:
                throw .io("\(full) is a device, FIFO or socket; a bundle holds files, directories and symlinks only")
            }
            guard archive_write_header(writer, entry) == ARCHIVE_OK else {
                throw .io("cannot add \(relative): \(ArchiveReader.message(writer))")
            }
            if format == deployctl_AE_IFREG {
                let fd = open(full, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw .io("cannot read \(full): \(String(cString: strerror(errno)))") }
                defer { close(fd) }
                while true {
                    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if count < 0 { throw .io("cannot read \(full): \(String(cString: strerror(errno)))") }
                    if count == 0 { break }
                    let written = buffer.withUnsafeBytes { archive_write_data(writer, $0.baseAddress, count) }
                    guard written == count else { throw .io("cannot add \(relative): \(ArchiveReader.message(writer))") }
                    summary.bytes += Int64(count)
                }
            }
            summary.entries += 1
        }
        guard archive_write_close(writer) == ARCHIVE_OK else { throw .io("cannot finish \(path): \(ArchiveReader.message(writer))") }
        return summary
    }
}
