#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What changes when a file is replaced or rewritten: size, modification time, inode. Certificates
/// and token files compare stamps to notice a change without reading the file.
public struct FileStamp: Equatable, Sendable {
    var size: Int64 = -1
    var seconds: Int = 0
    var nanoseconds: Int = 0
    var inode: UInt64 = 0

    public init(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        self.size = Int64(info.st_size)
        #if canImport(Darwin)
        self.seconds = Int(info.st_mtimespec.tv_sec)
        self.nanoseconds = Int(info.st_mtimespec.tv_nsec)
        #else
        self.seconds = Int(info.st_mtim.tv_sec)
        self.nanoseconds = Int(info.st_mtim.tv_nsec)
        #endif
        self.inode = UInt64(info.st_ino)
    }
}
