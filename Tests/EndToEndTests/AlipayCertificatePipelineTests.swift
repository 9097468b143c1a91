import Foundation
import PayhookConfig
import PayhookCore
import Postgres
import PostgresTestSupport
import Simulator
import Testing

/// Alipay's certificate mode through the whole pipeline: receiver, workers, PostgreSQL and
/// the simulated Alipay (HTTPS), with certificates the test makes: an app certificate, an
/// Alipay certificate, and a root bundle that also holds a certificate the library cannot
/// parse. The workers' queries carry both SNs, answers are verified by the SN they name, a
/// reissued certificate is downloaded and checked, and one that fails the check is refused:
/// the callback retries as `query_unavailable` and the order is never applied.
@Suite(.serialized, .timeLimit(.minutes(3))) struct AlipayCertificatePipelineTests {
    @Test func paysThroughRotation() async throws {
        let harness = try await PipelineHarness(alipayCertMode: true)
        defer { Task { await harness.tearDown() } }
        let certificates = try #require(harness.channels.alipayCertificates)
        let text = try String(contentsOfFile: harness.directory.configurationFile, encoding: .utf8)
        #expect(text.contains("alipay_cert_mode: true"))

        let first = try harness.order("CERT-E2E-1", channel: "alipay")
        try await harness.withPipeline { sender in
            #expect(try await sender.send(harness.notifies.notify(.valid, channel: "alipay", order: first, eventID: "c1")) == 200)
            try await harness.waitForDrain()
        }
        #expect(try harness.orderStatus("CERT-E2E-1") == "paid")
        #expect(certificates.downloadCount == 0)

        // Alipay reissues its certificate (same key, as Alipay does): answers name the new SN.
        let rotated = try harness.simulator.rotateAlipayCertificate()
        let second = try harness.order("CERT-E2E-2", channel: "alipay")
        try await harness.withPipeline { sender in
            #expect(try await sender.send(harness.notifies.notify(.valid, channel: "alipay", order: second, eventID: "c2")) == 200)
            try await harness.waitForDrain()
        }
        #expect(try harness.orderStatus("CERT-E2E-2") == "paid")
        #expect(certificates.downloadCount >= 1)
        #expect(certificates.issuedSNs.contains(rotated))
    }

    /// As an operator meets it: a missing certificate file is exit 2 naming the key and the file.
    @Test func aMissingCertificateFileIsExitTwoNamingTheKey() async throws {
        let harness = try await PipelineHarness(alipayCertMode: true)
        defer { Task { await harness.tearDown() } }
        let file = harness.directory.configurationFile
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let rootFile = try #require(text.split(separator: "\n").first { $0.contains("alipay_root_cert_file:") })
        try text.replacingOccurrences(of: "alipayRootCert.crt", with: "missing-root.crt").write(toFile: file, atomically: true, encoding: .utf8)
        let refused = try await ChildProcess.payhookAsync(["work", "--config", file])
        #expect(refused.status == 2, "\(refused.output)")
        #expect(refused.output.contains("channels[0].alipay_root_cert_file") && refused.output.contains("missing-root.crt"),
                "\(refused.output) (\(rootFile))")
    }

    enum BadCertificate: String, CaseIterable, Sendable {
        case otherCA = "does not chain"
        case expired = "expired"
    }

    @Test(arguments: BadCertificate.allCases)
    func aDownloadedCertificateThatFailsTheCheckIsRefused(_ bad: BadCertificate) async throws {
        let harness = try await PipelineHarness(alipayCertMode: true)
        defer { Task { await harness.tearDown() } }
        let key = harness.channels.alipayKey
        switch bad {
        case .otherCA:
            try harness.simulator.rotateAlipayCertificate(
                toForeignCertificate: try SimulatedAlipayCertificates.foreignCertificatePEM(key: key), key: key)
        case .expired:
            let now = Date()
            try harness.simulator.rotateAlipayCertificate(validity: now.addingTimeInterval(-30 * 86_400)...now.addingTimeInterval(-86_400))
        }
        let order = try harness.order("CERT-BAD-1", channel: "alipay")
        try await harness.withPipeline { sender in
            #expect(try await sender.send(harness.notifies.notify(.valid, channel: "alipay", order: order, eventID: "b1")) == 200)
            let connection = try harness.database.connect()
            try await harness.waitUntil("the callback has been tried twice") {
                try connection.query("SELECT attempts FROM callbacks WHERE out_trade_no = 'CERT-BAD-1'")
                    .rows.first?.decode(0, as: Int.self) ?? 0 >= 2
            }
        }
        // The notify is genuine and the channel says paid, but its answer names a refused certificate.
        #expect(try harness.orderStatus("CERT-BAD-1") == "created")
        let row = try harness.database.connect().query(
            "SELECT state, reason, coalesce(last_error, '') FROM callbacks WHERE out_trade_no = 'CERT-BAD-1'")[0]
        let state = try row.decode(0, as: String.self)
        #expect(state != "done" && state != "rejected", "\(bad.rawValue): \(state)")
        #expect(try row.decode(1, as: String.self) == "query_unavailable")
        let error = try row.decode(2, as: String.self)
        switch bad {
        case .otherCA: #expect(error.contains("certificate_untrusted") && error.contains("does not chain"), "\(error)")
        case .expired: #expect(error.contains("certificate_expired"), "\(error)")
        }
    }
}
