import ChannelClients
import Foundation
import PayhookCore
import Simulator
import SwiftASN1
import Testing
import X509
@testable import Channels

/// Sends a request to the simulator in-process, as its HTTP server would hand it over.
struct SimulatorTransport: QueryTransport {
    let simulator: ChannelSimulator

    func send(_ request: ChannelRequest, timeout: Duration) async throws(QueryError) -> ChannelResponse {
        let received = ReceivedRequest(request)
        guard let response = await simulator.respond(method: received.method, path: received.path, query: received.query,
                                                     headers: received.headers, body: received.body) else {
            throw .permanent(.httpStatus, "HTTP 404")
        }
        return response
    }
}

/// Counts the requests of each Alipay method that pass through.
final class CountingTransport: QueryTransport, @unchecked Sendable {
    // @unchecked because the counts are only touched under the lock.
    let inner: any QueryTransport
    private let lock = NSLock()
    private var counts: [String: Int] = [:]

    init(_ inner: any QueryTransport) { self.inner = inner }

    func count(_ method: String) -> Int { lock.withLock { counts[method, default: 0] } }

    func send(_ request: ChannelRequest, timeout: Duration) async throws(QueryError) -> ChannelResponse {
        let method = FormEncoding.parse(request.body).flatMap { AlipayAdapter.Fields($0).ascii("method") } ?? "?"
        lock.withLock { counts[method, default: 0] += 1 }
        return try await inner.send(request, timeout: timeout)
    }
}

@Suite struct AlipayCertificateSNTests {
    /// go-pay/gopay `alipay/sign_test.go` TestGetCertSN: the root SN of Alipay's own bundle.
    /// The SM2 root does not parse here and is skipped; nor does E1 (ECDSA P-384) in
    /// swift-certificates 1.21.1, which is not RSA-signed and so not part of the SN anyway.
    @Test func gopayRootSNVector() throws {
        let bundle = try AlipayRootBundle(pemRepresentation: Fixture.text("alipay_root_cert_gopay.crt"))
        #expect(bundle.sn == "687b59193f3f462dd5336e5abf83c5d8_02941eef3187dddf3d3b83462e1dfcf6")
        #expect(bundle.skipped == 2)
        // The two RSA roots stay as trust anchors for downloaded certificates.
        #expect(bundle.certificates.map { AlipayCertificateSN.issuerName($0.subject) } == [
            "CN=Ant Financial Certification Authority R1,OU=Certification Authority,O=Ant Financial,C=CN",
            "CN=iTrusChina Class 2 Root CA - G3,OU=China Trust Network,O=iTrusChina,C=CN",
        ])
    }

    /// Alipay's real certificate as gopay ships it (the leaf, then the Class 2 R1
    /// intermediate) chains to the real R1 root of the bundle: the check Payhook runs on a
    /// download accepts what Alipay hands out. The SN checked with pyca/cryptography. Its PEM
    /// lines are 76 characters long, as Java writes them: read all the same.
    @Test func alipaysRealCertificateChainsToItsRealRoot() async throws {
        let alipay = try AlipayCertificateFile(pemRepresentation: Fixture.text("alipay_cert_gopay.crt"))
        #expect(alipay.sn == "f51911a196031df9fdd0c1d7ca67bf26")
        let mode = AlipayCertificateMode(
            appCertificate: alipay, alipayCertificate: alipay,
            rootBundle: try AlipayRootBundle(pemRepresentation: Fixture.text("alipay_root_cert_gopay.crt")))
        let within = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15, inside every date of the chain
        let key = try await mode.trust(downloadedPEM: Fixture.text("alipay_cert_gopay.crt"), sn: alipay.sn, now: within)
        #expect(key.pemRepresentation == alipay.publicKey.pemRepresentation)
        // The leaf alone does not reach the root (the intermediate is missing).
        let leaf = try #require(AlipayCertificateSN.pemBlocks(Fixture.text("alipay_cert_gopay.crt")).first)
        await #expect(throws: QueryError.transient(.certificateUntrusted, "alipay_cert_sn \(alipay.sn) does not chain to alipay_root_cert_file")) {
            _ = try await mode.trust(downloadedPEM: leaf, sn: alipay.sn, now: within)
        }
        // After the leaf's notAfter (2030-03-01): expired.
        await #expect(throws: QueryError.self) {
            _ = try await mode.trust(downloadedPEM: Fixture.text("alipay_cert_gopay.crt"), sn: alipay.sn,
                                     now: Date(timeIntervalSince1970: 1_900_000_000))
        }
    }

    @Test func decimalSerials() {
        #expect(AlipayCertificateSN.decimal([0x00]) == "0")
        #expect(AlipayCertificateSN.decimal([0x00, 0xFF]) == "255")
        // Checked with Python: int("2025030000000000abcdef0123456789", 16).
        #expect(AlipayCertificateSN.decimal(Bytes.fromHex("2025030000000000abcdef0123456789")!)
                == "42727471696111907522568539873783146377")
        // 160 bits (iTrusChina's serial is that long): 2^160 - 1.
        #expect(AlipayCertificateSN.decimal([UInt8](repeating: 0xFF, count: 20))
                == "1461501637330902918203684832716283019655932542975")
    }

    /// A certificate the test makes with Alipay's issuer name and a 128-bit serial: the SN
    /// is MD5(issuer in RFC 2253 order + serial in decimal), computed here independently
    /// (Python hashlib over the literal string).
    @Test func snOfAGeneratedCertificate() throws {
        let key = RSAPrivateKey.generate()
        let issuer = try DistinguishedName {
            CountryName("CN")
            OrganizationName("Ant Financial")
            OrganizationalUnitName("Certification Authority")
            CommonName("Ant Financial Certification Authority Class 2 R1")
        }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(bytes: Bytes.fromHex("2025030000000000abcdef0123456789")!),
            publicKey: key.publicKey.certificatePublicKey, notValidBefore: now, notValidAfter: now.addingTimeInterval(86_400),
            issuer: issuer, subject: try DistinguishedName { CommonName("2088000000000001") },
            signatureAlgorithm: .sha256WithRSAEncryption, extensions: Certificate.Extensions(),
            issuerPrivateKey: key.certificatePrivateKey)
        #expect(AlipayCertificateSN.issuerName(certificate.issuer)
                == "CN=Ant Financial Certification Authority Class 2 R1,OU=Certification Authority,O=Ant Financial,C=CN")
        #expect(AlipayCertificateSN.sn(of: certificate) == "7ddda53077978f392cfc05a427c96078")
        let file = try AlipayCertificateFile(pemRepresentation: try certificate.serializeAsPEM().pemString)
        #expect(file.sn == "7ddda53077978f392cfc05a427c96078")
    }

    /// Java's RFC 2253 form: special characters escaped, an attribute without a keyword
    /// (e-mail) as its OID and the value's DER in hex, multi-valued RDNs joined with `+`.
    @Test func issuerNameAsJavaWritesIt() throws {
        typealias Attribute = RelativeDistinguishedName.Attribute
        let name = DistinguishedName([
            RelativeDistinguishedName(try Attribute(type: .RDNAttributeType.countryName, printableString: "CN")),
            RelativeDistinguishedName([
                Attribute(type: .RDNAttributeType.organizationName, utf8String: "Ant, Inc"),
                Attribute(type: .RDNAttributeType.organizationalUnitName, utf8String: "CA"),
            ]),
            RelativeDistinguishedName(try Attribute(type: .RDNAttributeType.emailAddress, ia5String: "a@b.cn")),
        ])
        let rendered = AlipayCertificateSN.issuerName(name)
        #expect(rendered.hasPrefix("1.2.840.113549.1.9.1=#16066140622e636e,"))
        #expect(rendered.hasSuffix(",C=CN"))
        #expect(rendered.contains(#"O=Ant\, Inc"#))
        #expect(rendered.contains("+"))
    }

    /// The simulator's bundle: a certificate that does not parse here (an SM2-curve key)
    /// first, then its RSA root: the root SN is the root's alone.
    @Test func generatedBundleSkipsTheUnparsableCertificate() throws {
        let keys = SimulatedChannels.generate()
        let certificates = try SimulatedAlipayCertificates(appKey: keys.alipayAppKey, alipayKey: keys.alipayKey)
        let unparsable = try SimulatedAlipayCertificates.unparsableCertificatePEM()
        #expect((try? Certificate(pemEncoded: unparsable)) == nil)
        let bundle = try AlipayRootBundle(pemRepresentation: certificates.rootBundlePEM)
        #expect(bundle.skipped == 1)
        #expect(bundle.sn == certificates.rootCertSN)
        #expect(bundle.sn.count == 32 && !bundle.sn.contains("_"))
        #expect(throws: KeyLoadError.self) { try AlipayRootBundle(pemRepresentation: unparsable) }
        #expect(throws: KeyLoadError.self) { try AlipayCertificateFile(pemRepresentation: "no certificate here") }
    }
}

/// Certificate mode end to end in-process: Payhook's client and the simulated Alipay,
/// certificates made by the test (an app certificate, an Alipay certificate, a root bundle
/// that also holds a certificate the library cannot parse).
@Suite struct AlipayCertificateModeTests {
    let channels: SimulatedChannels
    let simulator: ChannelSimulator
    let configuration: AlipayConfiguration
    let transport: CountingTransport
    let client: ChannelClient

    init() throws {
        var channels = SimulatedChannels.generate()
        channels.alipayCertificates = try SimulatedAlipayCertificates(appKey: channels.alipayAppKey, alipayKey: channels.alipayKey)
        self.channels = channels
        simulator = ChannelSimulator(channels: channels)
        guard case .alipay(let configuration)? = channels.configuration(SimulatedChannels.alipayID, baseURL: "http://127.0.0.1:1") else {
            throw KeyLoadError(file: nil, problem: "no alipay channel")
        }
        self.configuration = configuration
        transport = CountingTransport(SimulatorTransport(simulator: simulator))
        client = ChannelConfiguration.alipay(configuration).makeClient(transport: transport)
        simulator.setOrder(channel: SimulatedChannels.alipayID, ChannelOrder(
            outTradeNo: "CERT-1", channelTradeNo: "2026120222001", status: .paid, amountMinor: 1234,
            paidAt: Date(timeIntervalSince1970: 1_790_000_000)))
    }

    var mode: AlipayCertificateMode { configuration.certificateMode! }

    func query() async -> Result<OrderQueryResult, QueryError> {
        do { return .success(try await client.queryOrder(outTradeNo: "CERT-1")) } catch { return .failure(error) }
    }

    @Test func requestsNameAndSignBothSNs() throws {
        let certificates = try #require(channels.alipayCertificates)
        let request = try client.queryRequest(outTradeNo: "CERT-1")
        let fields = AlipayAdapter.Fields(try #require(FormEncoding.parse(request.body)))
        #expect(fields.ascii("app_cert_sn") == certificates.appCertSN)
        #expect(fields.ascii("alipay_root_cert_sn") == certificates.rootCertSN)
        // Signed with the rest: removing one breaks the app's signature.
        let pairs = try #require(FormEncoding.parse(request.body))
        let content = try #require(AlipaySignature.signContent(pairs.filter { $0.key != "sign" }, excludingSignType: false))
        let signText = try #require(fields.raw("sign"))
        let signature = try #require(AlipaySignature.decodeBase64(signText))
        #expect(channels.alipayAppKey.publicKey.isValidSHA256Signature(signature, for: content))
        let without = try #require(AlipaySignature.signContent(pairs.filter { $0.key != "sign" && $0.key != "app_cert_sn" },
                                                               excludingSignType: false))
        #expect(!channels.alipayAppKey.publicKey.isValidSHA256Signature(signature, for: without))
        // Close and order creation build on the same parameters.
        let close = try AlipayOrderCreation.closeRequest(outTradeNo: "CERT-1", configuration: configuration, now: Date())
        let closeFields = AlipayAdapter.Fields(try #require(FormEncoding.parse(close.body)))
        #expect(closeFields.ascii("app_cert_sn") == certificates.appCertSN)
        #expect(closeFields.ascii("alipay_root_cert_sn") == certificates.rootCertSN)
        let order = ChannelOrderRequest(outTradeNo: "CERT-2", scene: .qr, amountMinor: 100, subject: "s",
                                        notifyURL: "https://example.com/notify/alipay")
        guard case .call(let precreate) = try AlipayOrderCreation.step(order, configuration: configuration, now: Date()) else {
            Issue.record("qr makes a call")
            return
        }
        #expect(AlipayAdapter.Fields(try #require(FormEncoding.parse(precreate.body))).ascii("app_cert_sn") == certificates.appCertSN)
    }

    @Test func answersVerifyWithTheConfiguredCertificate() async throws {
        guard case .success(.found(let order)) = await query() else { Issue.record("expected found"); return }
        #expect(order.status == .paid && order.amountMinor == 1234)
        #expect(transport.count(AlipayAdapter.certificateDownloadMethod) == 0)
        // The simulator refuses a request without the SNs (public-key mode against cert mode).
        var keyMode = configuration
        keyMode.certificateMode = nil
        let keyClient = ChannelConfiguration.alipay(keyMode).makeClient(transport: transport)
        do {
            _ = try await keyClient.queryOrder(outTradeNo: "CERT-1")
            Issue.record("expected a refusal")
        } catch {
            #expect(error.code == .channelError && error.detail.contains("app-cert-sn"))
        }
    }

    /// Alipay reissues its certificate (with a new key, so only the downloaded certificate
    /// can verify): the unknown SN is downloaded once, checked, kept beside the old one.
    @Test func rotationThroughTheDownloadCall() async throws {
        let before = await query()
        guard case .success(.found) = before else { Issue.record("expected found: \(before)"); return }
        let newKey = RSAPrivateKey.generate()
        let rotated = try simulator.rotateAlipayCertificate(key: newKey)
        #expect(mode.publicKey(sn: rotated) == nil)
        guard case .success(.found(let order)) = await query() else { Issue.record("expected found after rotation"); return }
        #expect(order.outTradeNo == "CERT-1")
        #expect(transport.count(AlipayAdapter.certificateDownloadMethod) == 1)
        #expect(Set(mode.knownSNs) == [mode.configuredSN, rotated])
        // Known now: no second download.
        guard case .success(.found) = await query() else { Issue.record("expected found"); return }
        #expect(transport.count(AlipayAdapter.certificateDownloadMethod) == 1)

        // A notify naming the new SN verifies with its key; one naming none, with the configured key, fails.
        let side = simulator.channels.alipaySide
        let paid = simulator.order(channel: SimulatedChannels.alipayID, outTradeNo: "CERT-1")!
        let adapter = AlipayAdapter(configuration: configuration)
        let named = side.notifyBody(for: paid, notifyID: "n1", notifyTime: Date(), extra: [("alipay_cert_sn", rotated)])
        #expect(try adapter.verify(notify(named)).outTradeNo == "CERT-1")
        let unnamed = side.notifyBody(for: paid, notifyID: "n2", notifyTime: Date())
        #expect(throws: Rejection(.badSignature)) { try adapter.verify(notify(unnamed)) }
    }

    /// A notify naming an SN not downloaded yet falls back to the configured certificate
    /// (Alipay keeps the key when it reissues); so a notify from another key is refused.
    @Test func notifiesUseTheConfiguredCertificate() throws {
        let side = simulator.channels.alipaySide
        let paid = simulator.order(channel: SimulatedChannels.alipayID, outTradeNo: "CERT-1")!
        let adapter = AlipayAdapter(configuration: configuration)
        let plain = side.notifyBody(for: paid, notifyID: "n1", notifyTime: Date())
        #expect(try adapter.verify(notify(plain)).status == .paid)
        let unknownSN = side.notifyBody(for: paid, notifyID: "n2", notifyTime: Date(), extra: [("alipay_cert_sn", "0123")])
        #expect(try adapter.verify(notify(unknownSN)).status == .paid)
        var forger = side
        forger.alipayPrivateKey = RSAPrivateKey.generate()
        forger.certificates = nil
        #expect(throws: Rejection(.badSignature)) { try adapter.verify(notify(forger.notifyBody(for: paid, notifyID: "n3", notifyTime: Date()))) }
    }

    /// A certificate from another CA: refused with its own reason, never used, the query a
    /// transient failure; asked again within the refusal memory, Alipay is not asked again.
    @Test func aDownloadedCertificateThatDoesNotChainIsRefused() async throws {
        let key = RSAPrivateKey.generate()
        let foreign = try simulator.rotateAlipayCertificate(
            toForeignCertificate: try SimulatedAlipayCertificates.foreignCertificatePEM(key: key), key: key)
        guard case .failure(let error) = await query() else { Issue.record("expected a refusal"); return }
        #expect(error.kind == .transient)
        #expect(error.code == .certificateUntrusted)
        #expect(error.detail.contains("does not chain"))
        #expect(mode.publicKey(sn: foreign) == nil)
        #expect(!mode.knownSNs.contains(foreign))
        #expect(transport.count(AlipayAdapter.certificateDownloadMethod) == 1)
        guard case .failure(let again) = await query() else { Issue.record("expected a refusal"); return }
        #expect(again.code == .certificateUntrusted)
        #expect(transport.count(AlipayAdapter.certificateDownloadMethod) == 1)
        // Reading the answer without the client's download step: the SN is still unknown.
        let request = try client.queryRequest(outTradeNo: "CERT-1")
        let response = try await SimulatorTransport(simulator: simulator).send(request, timeout: .seconds(1))
        expectQueryError(.transient, .unknownKey) { () throws(QueryError) in try client.queryResult(response, outTradeNo: "CERT-1") }
    }

    @Test func anExpiredDownloadedCertificateIsRefused() async throws {
        let now = Date()
        let expired = try simulator.rotateAlipayCertificate(
            key: RSAPrivateKey.generate(), validity: now.addingTimeInterval(-30 * 86_400)...now.addingTimeInterval(-86_400))
        guard case .failure(let error) = await query() else { Issue.record("expected a refusal"); return }
        #expect(error.kind == .transient)
        #expect(error.code == .certificateExpired)
        #expect(mode.publicKey(sn: expired) == nil)
    }

    /// The trust check on its own: the SN must be the one asked for, the PEM must parse.
    @Test func trustChecksTheSNAndTheContent() async throws {
        let certificates = try #require(channels.alipayCertificates)
        await #expect(throws: QueryError.self) {
            _ = try await mode.trust(downloadedPEM: certificates.alipayCertificatePEM, sn: "not-its-sn", now: Date())
        }
        await #expect(throws: QueryError.self) {
            _ = try await mode.trust(downloadedPEM: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", sn: "x", now: Date())
        }
        let key = try await mode.trust(downloadedPEM: certificates.alipayCertificatePEM, sn: mode.configuredSN, now: Date())
        #expect(key.pemRepresentation == channels.alipayKey.publicKey.pemRepresentation)
    }

    func notify(_ body: [UInt8]) -> RawCallback {
        RawCallback(kind: .notify, method: "POST", path: "/notify/alipay",
                    headers: [HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded; charset=utf-8")],
                    body: body, sourceIP: "127.0.0.1")
    }
}
