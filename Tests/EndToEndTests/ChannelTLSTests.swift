import Foundation
import PayhookConfig
import PayhookCore
import Postgres
import PostgresTestSupport
import Simulator
import Testing

/// TLS to the channels over real sockets: the simulated channels serve HTTPS with
/// certificates the test makes (swift-certificates), and Payhook's workers refuse every one
/// that does not verify. A refusal is a transient `query_unavailable`: the callback is
/// retried, never applied, and its last error says why.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ChannelTLSTests {
    enum BadCertificate: String, CaseIterable, Sendable {
        case otherCA = "signed by a CA Payhook does not trust"
        case expired = "expired"
        case otherHost = "for another host name"
    }

    @Test(arguments: BadCertificate.allCases)
    func aChannelCertificateThatDoesNotVerifyIsRefusedAndRetried(_ bad: BadCertificate) async throws {
        let harness: PipelineHarness
        switch bad {
        case .otherCA:
            harness = try await PipelineHarness(trustedCAPEM: try SimulatorTLS.generate().caCertificatePEM)
        case .expired:
            let now = Date()
            harness = try await PipelineHarness(tls: try SimulatorTLS.generate(
                validity: now.addingTimeInterval(-30 * 86_400)...now.addingTimeInterval(-86_400)))
        case .otherHost:
            harness = try await PipelineHarness(tls: try SimulatorTLS.generate(names: ["channel.example"]))
        }
        defer { Task { await harness.tearDown() } }
        let order = try harness.order("TLS-1", channel: "alipay")
        try await harness.withPipeline { sender in
            #expect(try await sender.send(harness.notifies.notify(.valid, channel: "alipay", order: order, eventID: "t1")) == 200)
            let connection = try harness.database.connect()
            try await harness.waitUntil("the callback has been tried twice") {
                try connection.query("SELECT attempts FROM callbacks WHERE out_trade_no = 'TLS-1'")
                    .rows.first?.decode(0, as: Int.self) ?? 0 >= 2
            }
        }
        // Never applied: the channel says paid, but it could not be asked over verified TLS.
        #expect(try harness.orderStatus("TLS-1") == "created")
        let row = try harness.database.connect().query(
            "SELECT state, reason, coalesce(last_error, '') FROM callbacks WHERE out_trade_no = 'TLS-1'")[0]
        let state = try row.decode(0, as: String.self)
        #expect(state != "done" && state != "rejected", "\(bad.rawValue): \(state)")
        #expect(try row.decode(1, as: String.self) == "query_unavailable")
        let error = try row.decode(2, as: String.self)
        #expect(error.contains("tls"), "\(bad.rawValue): \(error)")
        switch bad {
        case .otherCA, .expired: #expect(error.contains("does not verify against the trusted roots"), "\(error)")
        case .otherHost: #expect(error.contains("another host name"), "\(error)")
        }
    }

    /// The same pipeline with a certificate that verifies pays the order: the TLS path is
    /// the one every other end-to-end test takes too.
    @Test func aVerifiedChannelPays() async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        #expect(harness.server.baseURL.hasPrefix("https://"))
        let order = try harness.order("TLS-OK", channel: "wechatpay")
        try await harness.withPipeline { sender in
            #expect(try await sender.send(harness.notifies.notify(.valid, channel: "wechatpay", order: order, eventID: "t2")) < 300)
            try await harness.waitForDrain()
        }
        #expect(try harness.orderStatus("TLS-OK") == "paid")
    }

    /// `insecure_http: true` (the simulator over plain http) is accepted and works.
    @Test func insecureHTTPIsAcceptedWhereAChannelSaysSo() async throws {
        let harness = try await PipelineHarness(plainHTTP: true)
        defer { Task { await harness.tearDown() } }
        #expect(harness.configuration.channels.allSatisfy { $0.insecureHTTP })
        let order = try harness.order("PLAIN-1", channel: "points")
        try await harness.withPipeline { sender in
            #expect(try await sender.send(harness.notifies.notify(.valid, channel: "points", order: order, eventID: "t3")) < 300)
            try await harness.waitForDrain()
        }
        #expect(try harness.orderStatus("PLAIN-1") == "paid")
    }

    /// The configuration check as an operator meets it: `payhook work` exits 2 naming the key.
    @Test func plainHTTPOrAMissingCAFileIsExitTwoNamingTheKey() async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        let file = harness.directory.configurationFile
        let text = try String(contentsOfFile: file, encoding: .utf8)

        // A channel over plain http without insecure_http.
        let plain = text.replacingOccurrences(of: "https://", with: "http://")
            .replacingOccurrences(of: "ca_file:", with: "# ca_file:")
        try plain.write(toFile: file, atomically: true, encoding: .utf8)
        let refused = try await ChildProcess.payhookAsync(["work", "--config", file])
        #expect(refused.status == 2, "\(refused.output)")
        #expect(refused.output.contains("channels[0].gateway_url"), "\(refused.output)")

        // A ca_file that is not there.
        try text.replacingOccurrences(of: harness.directory.caFile, with: harness.directory.path + "/missing-ca.pem")
            .write(toFile: file, atomically: true, encoding: .utf8)
        let missing = try await ChildProcess.payhookAsync(["work", "--config", file])
        #expect(missing.status == 2, "\(missing.output)")
        #expect(missing.output.contains("channels[0].ca_file") && missing.output.contains("missing-ca.pem"), "\(missing.output)")
    }
}
