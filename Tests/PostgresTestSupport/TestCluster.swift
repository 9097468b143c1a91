import CallbackQueue
import Foundation
public import Postgres
import Workers

/// A throwaway PostgreSQL cluster of the tests' own, run through `Deploy/pg-cluster`,
/// for tests that stop or crash the server.
public final class TestCluster: Sendable {
    public let directory: String
    public let port: Int

    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var script: String { repositoryRoot.appendingPathComponent("Deploy/pg-cluster").path }

    /// Starts a new cluster in a fresh folder under `PAYHOOK_TEST_CLUSTER_BASE` (or the
    /// repository's `.run/`).
    public static func start() throws -> TestCluster {
        let base = ProcessInfo.processInfo.environment["PAYHOOK_TEST_CLUSTER_BASE"]
            ?? repositoryRoot.appendingPathComponent(".run").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let directory = "\(base)/test-\(UUID().uuidString.prefix(8).lowercased())"
        let output = try run([script, "start", directory])
        guard let port = Int(output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw TestSupportError("pg-cluster start printed no port")
        }
        return TestCluster(directory: directory, port: port)
    }

    init(directory: String, port: Int) {
        self.directory = directory
        self.port = port
    }

    public func url(database: String = "postgres") -> String {
        "postgres://postgres@127.0.0.1:\(port)/\(database)"
    }

    /// `pg_ctl stop -m immediate`: a crash, with no shutdown checkpoint.
    public func crash() throws { _ = try Self.run([Self.script, "stop", directory, "immediate"]) }

    /// Starts the server again on the same port.
    public func restart() throws { _ = try Self.run([Self.script, "start", directory]) }

    public func remove() { _ = try? Self.run([Self.script, "remove", directory]) }

    /// Runs the script with popen: Foundation's `Process.waitUntilExit` can hang when
    /// called from a task on Linux.
    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let command = (["/bin/bash"] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
            .joined(separator: " ")
        guard let pipe = popen(command, "r") else { throw TestSupportError("popen failed") }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, pipe)
            if count <= 0 { break }
            output += buffer[0..<count]
        }
        let status = pclose(pipe)
        guard status == 0 else {
            throw TestSupportError("\(arguments.dropFirst().joined(separator: " ")) exited with status \(status)")
        }
        return String(decoding: output, as: UTF8.self)
    }
}

/// A database of its own for one suite or test, made migrated in the shared test
/// cluster (`PAYHOOK_TEST_DATABASE_URL`, or a cluster this process starts once).
public struct TestDatabase: Sendable {
    public let name: String
    public let url: String
    let adminURL: String

    /// A fresh database on the shared test cluster, or on the cluster `adminURL` names.
    /// Migrated, it has today's daily partitions and two ahead unless `partitioned` is false
    /// (then only the default partitions, for tests that cut their own).
    public static func create(migrated: Bool = true, partitioned: Bool = true, adminURL: String? = nil) throws -> TestDatabase {
        let adminURL = try adminURL ?? SharedCluster.adminURL()
        let name = "payhook_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
        let admin = try Connection(adminURL)
        // CREATE DATABASE takes no parameters; the name is ours and quoted.
        try admin.query("CREATE DATABASE " + admin.quoteIdentifier(name))
        let url = adminURL[..<adminURL.lastIndex(of: "/")!] + "/" + name
        let database = TestDatabase(name: name, url: url, adminURL: adminURL)
        if migrated {
            let connection = try database.connect()
            try PayhookSchema.migrate(on: connection)
            // As `payhook migrate` does: rows land in today's partition, not the default one.
            if partitioned { _ = try QueueMaintenance(settings: PartitionSettings()).ensurePartitions(on: connection) }
        }
        return database
    }

    public func connect() throws -> Connection { try Connection(url) }

    public func drop() {
        guard let admin = try? Connection(adminURL), let quoted = try? admin.quoteIdentifier(name) else { return }
        _ = try? admin.query("DROP DATABASE IF EXISTS \(quoted) WITH (FORCE)")
    }
}

enum SharedCluster {
    private static let started: Result<String, any Error> = Result {
        if let url = ProcessInfo.processInfo.environment["PAYHOOK_TEST_DATABASE_URL"] { return url }
        let cluster = try TestCluster.start()
        clusterToRemove = cluster.directory
        atexit { if let directory = SharedCluster.clusterToRemove { _ = try? TestCluster.run([TestCluster.script, "remove", directory]) } }
        return cluster.url()
    }

    nonisolated(unsafe) static var clusterToRemove: String?

    static func adminURL() throws -> String { try started.get() }
}

public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
