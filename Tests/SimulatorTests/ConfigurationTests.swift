import ChannelClients
import Channels
import Foundation
import PayhookCore
import PayhookConfig
import Receiver
import Simulator
import Testing

func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "payhook-sim-" + UUID().uuidString.prefix(8).lowercased()
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct ConfigurationTests {
    @Test func writtenConfigurationParsesAndItsKeysQueryTheSimulator() async throws {
        let path = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let live = try await LiveSimulator.start()
        let directory = SimulatorDirectory(path: path)
        try directory.writeKeys(sharedChannels, baseURL: live.server.baseURL)
        let file = try directory.writeConfiguration(
            sharedChannels, baseURL: live.server.baseURL,
            options: .init(databaseURL: "postgres://payhook@127.0.0.1:5999/payhook", receiverListen: "127.0.0.1:18080"))

        let configuration = try PayhookConfiguration.load(path: file, environment: [:])
        #expect(configuration.database.url == "postgres://payhook@127.0.0.1:5999/payhook")
        #expect(configuration.receiver.port == 18080)
        #expect(configuration.admin.tokenFile == directory.adminTokenFile)
        #expect(configuration.channels.map(\.id) == SimulatedChannels.channelIDs)
        #expect(configuration.channels.map(\.type) == [.alipay, .wechatpayV3, .points])
        #expect(configuration.channels.allSatisfy { $0.allowedIPs == ["127.0.0.1/32", "::1/128"] })
        let token = try String(contentsOfFile: directory.adminTokenFile, encoding: .utf8)
        #expect(token.trimmingCharacters(in: .whitespacesAndNewlines).count == 40)
        let mode = try FileManager.default.attributesOfItem(atPath: directory.keysDirectory + "/alipay_private.pem")[.posixPermissions] as? Int
        #expect(mode == 0o600)

        // The keys and URLs the file names are the simulator's: our adapters, loaded from the
        // file, query it and verify its answers.
        for channel in configuration.channels {
            let loaded = try channel.load()
            live.simulator.setOrder(channel: channel.id, paidOrder("ORDER-YAML-\(channel.id)"))
            let client = loaded.makeClient()
            #expect(found(try await client.queryOrder(outTradeNo: "ORDER-YAML-\(channel.id)"))?.status == .paid)
            // And notifies signed by the simulator's channel sides verify with them.
            let notify = NotifyFactory(channels: sharedChannels).notify(.valid, channel: channel.id, order: paidOrder("ORDER-N"), eventID: "EV1")
            #expect(try client.adapter.verify(notify.rawCallback()).outTradeNo == "ORDER-N")
        }
        await live.server.stop()
    }

    /// `payhook sim channels --tls`: HTTPS under the folder's CA, and a payhook.yaml whose
    /// channels trust it through `ca_file` (no `insecure_http`); Payhook's clients, loaded
    /// from that file, query the simulator over verified TLS.
    @Test func tlsSimulatorIsTrustedThroughItsCAFile() async throws {
        let path = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let directory = SimulatorDirectory(path: path)
        let tls = try directory.serverTLS()
        // The CA is kept: a restarted simulator issues from the same one.
        #expect(try directory.serverTLS().caCertificatePEM == tls.caCertificatePEM)
        let simulator = ChannelSimulator(channels: sharedChannels)
        let server = try await ChannelSimulatorServer.start(simulator, tls: tls)
        #expect(server.baseURL.hasPrefix("https://127.0.0.1:"))
        try directory.writeKeys(sharedChannels, baseURL: server.baseURL)
        let file = try directory.writeConfiguration(
            sharedChannels, baseURL: server.baseURL,
            options: .init(databaseURL: "postgres://payhook@127.0.0.1:5999/payhook", receiverListen: "127.0.0.1:18080"))
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(!text.contains("insecure_http"))
        #expect(!text.contains("http://127.0.0.1:\(server.port)"))
        let configuration = try PayhookConfiguration.load(path: file, environment: [:])
        #expect(configuration.channels.allSatisfy { $0.caFile == directory.caFile && !$0.insecureHTTP })
        let clients = try configuration.loadClients()
        for client in clients {
            simulator.setOrder(channel: client.channelID, paidOrder("ORDER-TLS-\(client.channelID)"))
            #expect(found(try await client.queryOrder(outTradeNo: "ORDER-TLS-\(client.channelID)"))?.status == .paid)
        }
        await server.stop()
    }

    @Test func plainHTTPSimulatorConfigurationSaysInsecureHTTP() throws {
        let path = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let directory = SimulatorDirectory(path: path)
        try directory.writeKeys(sharedChannels, baseURL: "http://127.0.0.1:4321")
        let file = try directory.writeConfiguration(
            sharedChannels, baseURL: "http://127.0.0.1:4321", options: .init(databaseURL: "postgres://x@127.0.0.1/x"))
        let configuration = try PayhookConfiguration.load(path: file, environment: [:])
        #expect(configuration.channels.allSatisfy { $0.insecureHTTP && $0.caFile == nil })
    }

    @Test func reloadedKeysAreTheSameKeys() throws {
        let path = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let directory = SimulatorDirectory(path: path)
        #expect(!directory.hasKeys)
        try directory.writeKeys(sharedChannels, baseURL: "http://127.0.0.1:4321/")
        #expect(directory.hasKeys)
        let (reloaded, baseURL) = try directory.loadKeys()
        #expect(baseURL == "http://127.0.0.1:4321")
        #expect(reloaded.wechatAPIv3Key == sharedChannels.wechatAPIv3Key)
        #expect(reloaded.pointsSecret == sharedChannels.pointsSecret)
        #expect(reloaded.wechatPlatformSerial == "PUB_KEY_ID_0001")
        // Notifies signed with the reloaded keys verify with the original configuration, and back.
        let factory = NotifyFactory(channels: reloaded)
        for configuration in sharedChannels.configurations(baseURL: baseURL) {
            let adapter = configuration.makeAdapter()
            let notify = factory.notify(.valid, channel: configuration.channelID, order: paidOrder("ORDER-R1"), eventID: "EV2")
            #expect(try adapter.verify(notify.rawCallback()).amountMinor == 8888)
        }
        let adminToken = try String(contentsOfFile: directory.adminTokenFile, encoding: .utf8)
        try directory.writeKeys(reloaded, baseURL: baseURL)
        #expect(try String(contentsOfFile: directory.adminTokenFile, encoding: .utf8) == adminToken)
    }
}
